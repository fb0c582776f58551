"""Outlier exposure: auxiliary negative images from a *different* dataset (``--outlier-exposure``)."""
from __future__ import annotations

import torch

from ..errors import UserError
from .datasets import dataset_path, load_splits
from .one_class import to_unit_range

# Datasets that hold the same images under another name: mnist5k is a subset of MNIST.
_SOURCE = {"mnist5k": "mnist"}


def parse_outlier_spec(spec: str) -> tuple[str, str | None]:
    """'NAME' or 'NAME:ROOT' -> (name, root or None)."""
    name, _, root = spec.partition(":")
    if not name:
        raise UserError(f"--outlier-exposure {spec!r} must be NAME or NAME:ROOT, e.g. fashion-mnist or folder:../shared/data/cifar10-jpeg")
    return name, root or None


def _normalised(class_name: str) -> str:
    """'0 - zero' -> '0', 'Automobile' -> 'car', 'air_plane' -> 'airplane': one spelling per class."""
    name = class_name.lower().split(" - ")[0].replace("_", "").replace("-", "").replace(" ", "")
    return _SYNONYMS.get(name, name)


# Spellings of one class across CIFAR-10, COCO and folder trees.
_SYNONYMS = {"automobile": "car", "plane": "airplane", "aeroplane": "airplane"}


def shared_class_names(outlier_classes, evaluated_classes) -> list[str]:
    """The outlier dataset's class names that name a class of the evaluated dataset too."""
    evaluated = {_normalised(name) for name in evaluated_classes}
    return [name for name in outlier_classes if _normalised(name) in evaluated]


def load_outlier_images(spec: str, data_config, in_channels: int) -> torch.Tensor:
    """Training images of the dataset in ``spec`` as float (N, in_channels, size, size) in [-1, 1].

    Refuses the dataset being evaluated (same name or same source, or the same folder tree) and
    any dataset that shares a class name with it (e.g. the CIFAR-10 JPEG folder for cifar10, or
    COCO32's airplane/bird/... for CIFAR-10): its images of those classes would be the novel test
    classes leaking into training. DESIGN asks for classes disjoint from the test classes.
    """
    name, root = parse_outlier_spec(spec)
    root = root if root is not None else data_config.root
    same_source = _SOURCE.get(name, name) == _SOURCE.get(data_config.name, data_config.name)
    same_folder = name == data_config.name == "folder" and (
        dataset_path(name, root).resolve() == dataset_path("folder", data_config.root, data_config.folder).resolve())
    if (same_source and name != "folder") or same_folder:
        raise UserError(f"--outlier-exposure {spec} is the dataset being evaluated ({data_config.name}); "
                        "choose a dataset whose classes are disjoint from the test classes, e.g. fashion-mnist for mnist")
    outliers = load_splits(name, root, data_config.size, data_config.download)
    evaluated = load_splits(data_config.name, data_config.root, data_config.size, data_config.download, data_config.variant,
                            data_config.folder)
    shared = shared_class_names(outliers.class_names, evaluated.class_names)
    if shared:
        raise UserError(f"--outlier-exposure {spec} shares the classes {', '.join(shared)} with the evaluated dataset "
                        f"({data_config.name}); choose a dataset whose classes are disjoint from the test classes")
    images = outliers.train_images
    if images.shape[1] != in_channels:  # grey <-> RGB
        images = images.float().mean(1, keepdim=True).round().to(torch.uint8) if in_channels == 1 else images.expand(-1, in_channels, -1, -1)
    return to_unit_range(images.contiguous())
