"""Image grids and plots."""
