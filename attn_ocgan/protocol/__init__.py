"""Grids of protocol cells (model x class x seed), their result tables and the cross-model comparison."""
