"""Range checks of model options: a one-line UserError naming the option and how to change it."""
from __future__ import annotations

from ...errors import UserError


def check_range(config, name: str, low, high) -> None:
    """One-line UserError when ``config.name`` is outside [low, high] (``None``: unbounded)."""
    value = getattr(config, name)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UserError(f"model option {name}={value} must be {bound}; change --model-arg {name} (or its flag)")
