"""Small utilities every layer may use (atomic files, file locks, machine description); they import
nothing else from the package."""
