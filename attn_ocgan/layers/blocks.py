"""DCGAN-style convolution stacks shared by every model (32x32 inputs halve to 4x4)."""
from __future__ import annotations

import math

import torch
from torch import nn


def n_halvings(image_size: int, final_size: int = 4) -> int:
    steps = math.log2(image_size / final_size)
    if image_size < final_size or steps != int(steps):
        raise ValueError(f"image size {image_size} must be {final_size} times a power of two (e.g. 32)")
    return int(steps)


class ConvDownStack(nn.Sequential):
    """(B, in_channels, S, S) -> (B, width * 2**(k-1), 4, 4) with k stride-2 convs, S = 4 * 2**k.

    The first conv has no BatchNorm (DCGAN practice). ``batch_norm=False`` everywhere suits
    critics whose batches mix real and fake images.
    """

    def __init__(self, in_channels: int, width: int, image_size: int, batch_norm: bool = True):
        layers: list[nn.Module] = []
        channels = in_channels
        for index in range(n_halvings(image_size)):
            out = width * 2**index
            layers.append(nn.Conv2d(channels, out, 4, 2, 1, bias=not (batch_norm and index > 0)))
            if batch_norm and index > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels = out
        super().__init__(*layers)
        self.out_channels = channels
        self.stage_channels = [width * 2**index for index in range(n_halvings(image_size))]

    def forward_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The activation after each stride-2 stage: [(B, width, S/2, S/2), ..., (B, out_channels, 4, 4)]."""
        features, x = [], images
        for layer in self:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return features


class ConvUpStack(nn.Sequential):
    """(B, width * 2**(k-1), 4, 4) -> (B, out_channels, S, S) with k stride-2 transposed convs; tanh output."""

    def __init__(self, out_channels: int, width: int, image_size: int):
        steps = n_halvings(image_size)
        layers: list[nn.Module] = []
        channels = width * 2 ** (steps - 1)
        self.in_channels = channels
        for index in range(steps - 1):
            out = channels // 2
            layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1), nn.Tanh()]
        super().__init__(*layers)


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) convs, N(1, 0.02) BatchNorm scales, as in the DCGAN paper."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class LatentEncoder(nn.Module):
    """DCGAN encoder: (B, C, S, S) -> unbounded latent (B, latent_dim, 1, 1) (GANomaly's En)."""

    def __init__(self, in_channels: int, width: int, image_size: int, latent_dim: int):
        super().__init__()
        self.features = ConvDownStack(in_channels, width, image_size)
        self.to_latent = nn.Conv2d(self.features.out_channels, latent_dim, 4, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.features(images))


class LatentDecoder(nn.Module):
    """DCGAN generator: latent (B, latent_dim, 1, 1) -> image (B, C, S, S) in (-1, 1)."""

    def __init__(self, out_channels: int, width: int, image_size: int, latent_dim: int):
        super().__init__()
        self.body = ConvUpStack(out_channels, width, image_size)
        self.from_latent = nn.Sequential(nn.ConvTranspose2d(latent_dim, self.body.in_channels, 4, bias=False),
                                         nn.BatchNorm2d(self.body.in_channels), nn.ReLU(inplace=True))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.body(self.from_latent(latent))
