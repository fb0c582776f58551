"""Protocol 2: train on the training images of one class; test on the whole test split."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from .datasets import LabeledSplits


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


@dataclass
class OneClassData:
    train: torch.Tensor  # float (N, C, H, W) in [-1, 1]: normal training images only
    validation: torch.Tensor  # held-out normal training images (may be empty)
    test: torch.Tensor  # float (M, C, H, W): the whole test split
    test_is_novel: torch.Tensor  # int64 (M,): 1 = novel (other class), 0 = normal
    test_classes: torch.Tensor  # int64 (M,): the original labels
    normal_class: int
    class_names: tuple[str, ...]

    @property
    def in_channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.shape[-1])


def make_one_class(splits: LabeledSplits, normal_class: int, val_fraction: float = 0.0) -> OneClassData:
    n_classes = len(splits.class_names)
    if not 0 <= normal_class < n_classes:
        raise UserError(
            f"normal class {normal_class} is out of range; this dataset has classes 0-{n_classes - 1} "
            f"({', '.join(splits.class_names)})"
        )
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction {val_fraction} must be in [0, 1)")
    normal = splits.train_images[splits.train_labels == normal_class]
    n_validation = int(round(len(normal) * val_fraction))
    # Deterministic hold-out: the last images of the class (no dependence on the training seed).
    train, validation = normal[: len(normal) - n_validation], normal[len(normal) - n_validation:]
    return OneClassData(
        train=to_unit_range(train),
        validation=to_unit_range(validation),
        test=to_unit_range(splits.test_images),
        test_is_novel=(splits.test_labels != normal_class).long(),
        test_classes=splits.test_labels.clone(),
        normal_class=normal_class,
        class_names=splits.class_names,
    )
