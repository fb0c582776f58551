"""Models; each folder registers itself in :mod:`attn_ocgan.registry`."""
