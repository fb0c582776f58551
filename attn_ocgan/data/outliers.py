"""Outlier exposure: auxiliary negative images from a *different* dataset (``--outlier-exposure``)."""
from __future__ import annotations

import torch

from ..config import resolve_data_root
from ..errors import UserError
from .datasets import load_splits
from .one_class import to_unit_range

# Datasets that hold the same images under another name: mnist5k is a subset of MNIST.
_SOURCE = {"mnist5k": "mnist"}


def parse_outlier_spec(spec: str) -> tuple[str, str | None]:
    """'NAME' or 'NAME:ROOT' -> (name, root or None)."""
    name, _, root = spec.partition(":")
    if not name:
        raise UserError(f"--outlier-exposure {spec!r} must be NAME or NAME:ROOT, e.g. fashion-mnist or folder:../shared/data/cifar10-jpeg")
    return name, root or None


def load_outlier_images(spec: str, data_config, in_channels: int) -> torch.Tensor:
    """Training images of the dataset in ``spec`` as float (N, in_channels, size, size) in [-1, 1].

    Refuses the dataset being evaluated (same name or same source, or the same folder tree):
    its classes are the test classes, so using them would leak the novel classes into training.
    """
    name, root = parse_outlier_spec(spec)
    root = root if root is not None else data_config.root
    same_source = _SOURCE.get(name, name) == _SOURCE.get(data_config.name, data_config.name)
    same_folder = name == data_config.name == "folder" and resolve_data_root(root).resolve() == resolve_data_root(data_config.root).resolve()
    if (same_source and name != "folder") or same_folder:
        raise UserError(f"--outlier-exposure {spec} is the dataset being evaluated ({data_config.name}); "
                        "choose a dataset whose classes are disjoint from the test classes, e.g. fashion-mnist for mnist")
    images = load_splits(name, root, data_config.size, data_config.download).train_images
    if images.shape[1] != in_channels:  # grey <-> RGB
        images = images.float().mean(1, keepdim=True).round().to(torch.uint8) if in_channels == 1 else images.expand(-1, in_channels, -1, -1)
    return to_unit_range(images.contiguous())
