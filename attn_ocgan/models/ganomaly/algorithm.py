"""GANomaly training recipe (official order): (1) update the generator, (2) update the discriminator."""
from __future__ import annotations

import torch

from ...config import TrainConfig
from ..base import Algorithm, adam, test_reconstruction_grids
from ..components import train_discriminator
from .config import GANomalyConfig
from .loss import GANomalyLoss
from .torch_model import GANomaly


class GANomalyAlgorithm(Algorithm):
    progress_loss = "generator/contextual"  # L1(G(x), x), the reconstruction term

    def __init__(self, model: GANomaly, config: GANomalyConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.loss = GANomalyLoss(config.adversarial_weight, config.contextual_weight, config.encoder_weight)
        self.optimizers = {"generator": adam([model.encoder, model.decoder, model.second_encoder], train),
                           "discriminator": adam([model.discriminator], train)}
        self.discriminator_resets = 0

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        model = self.model
        model.train()
        reconstruction, latent, second_latent = model.generate(images)

        # (1) generator: feature matching against real images + contextual L1 + latent L2
        with torch.no_grad():  # a target for G: D's gradients from this step are discarded before D's own step
            real_features = model.discriminator.features(images)
        terms = self.loss(real_features, model.discriminator.features(reconstruction), reconstruction, images, latent,
                          second_latent)
        self._step("generator", terms["total"])
        logs = {f"generator/{name}": value.item() for name, value in terms.items()}

        # (2) discriminator: real images -> 1, reconstructions -> 0; a collapsed D restarts (official recipe)
        logs["discriminator"], reset = train_discriminator(self, model.discriminator, images, reconstruction,
                                                           self.config.reinit_discriminator_below)
        self.discriminator_resets += reset
        return logs

    @torch.no_grad()
    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Fixed inputs and their reconstructions; normal / novel test inputs above their reconstructions."""
        self.model.eval()
        return {"images/inputs": images, "images/reconstructions": self.model.reconstruct(images),
                **test_reconstruction_grids(self.model.reconstruct, test_normal, test_novel)}
