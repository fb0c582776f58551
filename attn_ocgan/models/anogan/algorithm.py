"""AnoGAN training recipe: a plain DCGAN on the normal class ((1) discriminator, (2) generator)."""
from __future__ import annotations

import torch

from ...config import TrainConfig
from ..base import Algorithm, adam
from ..components import bce_to, critic_loss
from .config import AnoGANConfig
from .torch_model import AnoGAN

N_RESIDUAL_IMAGES = 8  # per group: the latent search makes residual grids cost search_steps forward passes


class AnoGANAlgorithm(Algorithm):
    progress_loss = "generator"  # a plain DCGAN: no reconstruction term, its adversarial loss

    def __init__(self, model: AnoGAN, config: AnoGANConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.optimizers = {"generator": adam([model.generator], train),
                           "discriminator": adam([model.discriminator], train)}

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        model = self.model
        model.train()
        fake = model.generator(model.sample_latent(len(images)))
        logs = {"discriminator": self._step("discriminator",
                                            critic_loss(model.discriminator(images), model.discriminator(fake.detach())))}
        logs["generator"] = self._step("generator", bce_to(model.discriminator(fake), 1.0))  # non-saturating
        return logs

    @torch.no_grad()
    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Inputs, decodes of fixed latents, and residual rows (input / G(z*) / |x - G(z*)|) of test images."""
        model = self.model
        model.eval()
        grids = {"images/inputs": images, "images/random_latent_decodes": model.generator(latent)}
        for group, batch in (("test_normal", test_normal), ("test_novel", test_novel)):
            if batch is not None and len(batch):
                rows = model.residual_panel(batch[:N_RESIDUAL_IMAGES])
                grids[f"images/{group}_residuals"] = torch.cat([row for _, row in rows])
        return grids
