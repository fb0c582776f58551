"""GANomaly networks: encoder-decoder-encoder generator and a DCGAN discriminator."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import LatentDecoder, LatentEncoder, init_dcgan_weights
from ..base import NoveltyModel
from ..components import ConvCritic
from .config import GANomalyConfig


class GANomaly(NoveltyModel):
    """x -> z = En1(x) -> x' = De(z) -> z' = En2(x'); novelty score = mean((z - z')^2)."""

    def __init__(self, config: GANomalyConfig):
        super().__init__()
        self.config = config
        size, channels, width = config.image_size, config.in_channels, config.generator_width
        self.encoder = LatentEncoder(channels, width, size, config.latent_dim)
        self.decoder = LatentDecoder(channels, width, size, config.latent_dim)
        self.second_encoder = LatentEncoder(channels, width, size, config.latent_dim)
        self.discriminator = ConvCritic(channels, config.discriminator_width, size)  # features: feature matching
        init_dcgan_weights(self)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.latent_dim, 1, 1)

    def generate(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, C, S, S), latent z (B, nz, 1, 1), latent of the reconstruction z')."""
        latent = self.encoder(images)
        reconstruction = self.decoder(latent)
        return reconstruction, latent, self.second_encoder(reconstruction)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))

    score_name = "latent distance, mean (z - z')^2"

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): mean squared distance between the two latents."""
        _, latent, second_latent = self.generate(images)
        return (latent - second_latent).pow(2).flatten(1).mean(1)

    def gradcam_heads(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}
