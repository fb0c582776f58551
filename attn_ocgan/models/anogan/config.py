"""AnoGAN hyper-parameters (Schlegl et al., IPMI 2017)."""
from __future__ import annotations

from dataclasses import dataclass

from ..components import check_range


@dataclass
class AnoGANConfig:
    in_channels: int = 1  # filled from the dataset
    image_size: int = 32  # filled from the dataset
    latent_dim: int = 100
    generator_width: int = 64
    discriminator_width: int = 64
    # Scoring: per-image latent search, loss = (1 - lambda) * residual + lambda * discrimination.
    search_steps: int = 50  # the paper uses 500; the scoring time grows linearly with it (see README.md)
    search_lr: float = 0.05  # Adam on the latent
    discrimination_weight: float = 0.1  # lambda
    search_seed: int = 0  # draws the one start z0 of every image's search: repeatable, batch-independent scores

    def __post_init__(self):
        for name in ("latent_dim", "generator_width", "discriminator_width", "search_steps"):
            check_range(self, name, 1, None)
        check_range(self, "discrimination_weight", 0.0, 1.0)
        check_range(self, "search_lr", 1e-8, None)


DATASET_PRESETS: dict[str, dict] = {}
