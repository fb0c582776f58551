"""The DCGAN-style image critic shared by OCGAN (visual discriminator, classifier), the attention
model's guide, GANomaly's and AnoGAN's discriminators."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import ConvDownStack


class ConvCritic(nn.Module):
    """Image (B, C, S, S) -> one logit (B,), or ``outputs`` > 1 logits (B, outputs); ``features``
    gives the last feature map (B, W', 4, 4)."""

    def __init__(self, in_channels: int, width: int, image_size: int, outputs: int = 1):
        super().__init__()
        self.features = ConvDownStack(in_channels, width, image_size)
        self.head = nn.Conv2d(self.features.out_channels, outputs, 4)
        self.outputs = outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(images))
        return logits.flatten() if self.outputs == 1 else logits.flatten(1)
