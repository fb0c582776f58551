"""Rotation-prediction baseline hyper-parameters."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range
from ..ocgan.config import DATASET_PRESETS as OCGAN_PRESETS


@dataclass
class RotNetConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset
    width: int = 16  # base channels of the classifier (the attention model's guide_width)

    def __post_init__(self):
        check_range(self, "width", 1, None)


# The attention model's guide at each dataset: 32 channels where the networks are wide (CIFAR-10, COCO32, folders).
DATASET_PRESETS: dict[str, dict] = {name: {"width": 32} for name, preset in OCGAN_PRESETS.items()
                                    if preset.get("classifier_width", 32) >= 64}
