"""Small utilities every layer may use (atomic files, file locks, machine description, timing, folder
packing); they import nothing else from the package but ``errors``."""
