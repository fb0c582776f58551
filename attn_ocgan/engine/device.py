"""Where models run: ``--device auto|cpu|cuda|cuda:N`` -> a checked ``torch.device``.

Data stays in host memory until a step or a scoring batch needs it; the model, the optimiser
state and every tensor a model creates live on the model's device (``model_device``).
"""
from __future__ import annotations

import torch

from ..errors import UserError

DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda if torch sees a GPU, else cpu; an unavailable or unknown device is a UserError."""
    name = "auto" if name in (None, "") else str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use {DEVICE_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} asked for, but torch sees no CUDA GPU here; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s); use cuda:0..")
    elif device.type != "cpu":
        raise UserError(f"device {name!r} is not supported; use {DEVICE_HELP}")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (cpu for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def prepare_device(device: torch.device) -> None:
    """Per-device speed settings: cuDNN picks the fastest convolution for our fixed 32x32 shapes."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
