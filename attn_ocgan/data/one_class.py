"""Protocol 2: train on the training images of one class; test on the whole test split."""
from __future__ import annotations

from dataclasses import dataclass, field

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
    # training images of the other classes for epoch selection (``--select-epoch validation``; may be empty)
    validation_novel: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    # --known-anomalies: the seen anomaly classes and their *training* images in [-1, 1] (else empty)
    known_anomaly_classes: tuple[int, ...] = ()
    known_anomalies: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    # ground-truth anomaly masks of the test images, float (M, 1, H, W) in {0, 1}, where the dataset has them
    test_masks: torch.Tensor | None = None

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, is_novel): held-out normal training images, then other-class training images."""
        images = torch.cat([self.validation, self.validation_novel]) if len(self.validation_novel) else self.validation
        is_novel = torch.cat([torch.zeros(len(self.validation)), torch.ones(len(self.validation_novel))]).long()
        return images, is_novel

    @property
    def in_channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.shape[-1])


def choose_known_anomaly_classes(n_classes: int, normal_class: int, k: int, seed: int = 0) -> tuple[int, ...]:
    """K classes other than ``normal_class``, drawn with ``seed`` and the normal class (sorted)."""
    others = [c for c in range(n_classes) if c != normal_class]
    if not 0 <= k <= len(others):
        raise UserError(f"--known-anomalies {k} must be in 0..{len(others)} (the other classes of this dataset)")
    order = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed * 1000 + normal_class))
    return tuple(sorted(others[i] for i in order[:k].tolist()))


def resolve_class(class_names, normal_class: int | str) -> int:
    """A class index from an index or a class (folder) name such as 'good'; one-line UserError otherwise."""
    if isinstance(normal_class, str):
        if normal_class.isdigit():
            normal_class = int(normal_class)
        elif normal_class in class_names:
            return class_names.index(normal_class)
        else:
            raise UserError(f"normal class {normal_class!r} is not a class of this dataset ({', '.join(class_names)}); "
                            "pass one of these names or an index")
    if not 0 <= normal_class < len(class_names):
        raise UserError(
            f"normal class {normal_class} is out of range; this dataset has classes 0-{len(class_names) - 1} "
            f"({', '.join(class_names)})"
        )
    return normal_class


def make_one_class(splits: LabeledSplits, normal_class: int | str, val_fraction: float = 0.0, val_novel: int = 0,
                   known_anomalies: int = 0, known_anomaly_seed: int = 0) -> OneClassData:
    """Protocol 2 data for one normal class. ``val_fraction`` holds out the last share of the class's
    training images; with a hold-out, ``val_novel`` training images of the other classes (a fixed
    sample per class, independent of the training seed) join them as a validation split. Test images
    never enter it. ``known_anomalies`` K: the training images of K other classes
    (``choose_known_anomaly_classes``) become ``known_anomalies``; the validation split then draws
    its novel images from the unseen classes only."""
    n_classes = len(splits.class_names)
    normal_class = resolve_class(splits.class_names, normal_class)
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction {val_fraction} must be in [0, 1); change --val-fraction")
    if val_novel < 0:
        raise UserError(f"val_novel {val_novel} must be >= 0; change --val-novel")
    normal = splits.train_images[splits.train_labels == normal_class]
    n_validation = int(round(len(normal) * val_fraction))
    # Deterministic hold-out: the last images of the class (no dependence on the training seed).
    train, validation = normal[: len(normal) - n_validation], normal[len(normal) - n_validation:]
    known = choose_known_anomaly_classes(n_classes, normal_class, known_anomalies, known_anomaly_seed)
    is_known = torch.isin(splits.train_labels, torch.tensor(known, dtype=torch.long))
    validation_novel = splits.train_images[:0]
    if n_validation and val_novel:
        others = torch.nonzero((splits.train_labels != normal_class) & ~is_known).flatten()
        order = torch.randperm(len(others), generator=torch.Generator().manual_seed(normal_class))
        validation_novel = splits.train_images[others[order[:val_novel]]]
    return OneClassData(
        train=to_unit_range(train),
        validation=to_unit_range(validation),
        test=to_unit_range(splits.test_images),
        test_is_novel=(splits.test_labels != normal_class).long(),
        test_classes=splits.test_labels.clone(),
        normal_class=normal_class,
        class_names=splits.class_names,
        validation_novel=to_unit_range(validation_novel),
        known_anomaly_classes=known,
        known_anomalies=to_unit_range(splits.train_images[is_known]),
        test_masks=None if splits.test_masks is None else splits.test_masks.float() / 255,
    )
