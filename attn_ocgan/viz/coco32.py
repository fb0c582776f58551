"""Contact sheet of COCO32: the same crops unmasked and masked, one row per class."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.datasets import load_coco32
from ..data.one_class import to_unit_range
from .plots import save_image_rows


def save_coco32_contact_sheet(root: str | Path, path: str | Path, per_class: int = 6, split: str = "train") -> Path:
    """Write a PNG with, per class, the first ``per_class`` crops of ``split`` unmasked | masked.

    Classes with fewer crops are padded with blank (white) tiles so rows stay aligned.
    """
    variants = {variant: load_coco32(Path(root), 32, False, variant) for variant in ("unmasked", "masked")}
    columns = {}
    for variant, splits in variants.items():
        images = splits.train_images if split == "train" else splits.test_images
        labels = splits.train_labels if split == "train" else splits.test_labels
        rows = []
        for index, name in enumerate(splits.class_names):
            chosen = to_unit_range(images[labels == index][:per_class])
            blank = torch.ones((per_class - len(chosen), *images.shape[1:]))
            rows.append((f"{name} ({int((labels == index).sum())})", torch.cat([chosen, blank])))
        columns[f"{variant} ({split})"] = rows
    save_image_rows(Path(path), columns, title=f"COCO32 {split} crops: unmasked vs masked, {Path(root).name}")
    return Path(path)
