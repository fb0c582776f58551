"""Attention-map generator: multi-scale feature maps -> CBAM (timm) -> one soft mask per image."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.cbam import CbamModule
from torch import nn


def masks_from_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """M = sigmoid(logits / T): a lower temperature pushes the mask towards 0/1 for the same logits."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.sigmoid(logits / temperature)


def apply_mask(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """x * M in pixel space: images in [-1, 1], masks (B, 1, H, W) in [0, 1].

    Masked-out pixels become black (-1), as the background of the COCO masked crops
    (pixel value 0); a plain product on the [-1, 1] scale would turn them mid-grey instead.
    """
    return (images + 1.0) * masks - 1.0


def cbam(channels: int, reduction: int) -> CbamModule:
    """timm's CBAM (channel gate, then spatial gate) with at least one hidden channel."""
    return CbamModule(channels, rd_channels=max(1, channels // reduction))


class AttentionMapGenerator(nn.Module):
    """Feature maps at several scales -> mask (B, 1, S, S) in (0, 1).

    Each scale is refined by CBAM, projected to one logit channel by a 1x1 conv and
    upsampled (bilinear) to the image size; the logits of all scales are summed and
    passed through ``sigmoid(logits / temperature)``.
    """

    def __init__(self, channels: list[int], image_size: int, reduction: int, temperature: float):
        super().__init__()
        self.image_size = image_size
        self.temperature = temperature
        self.refiners = nn.ModuleList(cbam(c, reduction) for c in channels)
        self.to_logit = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in channels)

    def logits(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        total = 0
        for feature, refine, project in zip(features, self.refiners, self.to_logit):
            total = total + F.interpolate(project(refine(feature)), size=size, mode="bilinear", align_corners=False)
        return total

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return masks_from_logits(self.logits(features), self.temperature)
