"""Skip-GANomaly training recipe (official order): (1) update the generator, (2) update the discriminator."""
from __future__ import annotations

import torch

from ...config import TrainConfig
from ..base import Algorithm, adam, test_reconstruction_grids
from ..components import train_discriminator
from .config import SkipGANomalyConfig
from .loss import SkipGANomalyLoss
from .torch_model import SkipGANomaly

N_RESIDUAL_IMAGES = 8  # per test group: one grid row each of input / G(x) / |x - G(x)|


class SkipGANomalyAlgorithm(Algorithm):
    progress_loss = "generator/contextual"  # L1(G(x), x), the reconstruction term

    def __init__(self, model: SkipGANomaly, config: SkipGANomalyConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.loss = SkipGANomalyLoss(config.adversarial_weight, config.contextual_weight, config.latent_weight)
        self.optimizers = {"generator": adam([model.generator], train),
                           "discriminator": adam([model.discriminator], train)}
        self.discriminator_resets = 0

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        model = self.model
        model.train()
        reconstruction = model.generator(images)

        # (1) generator: fool D on G(x) + contextual L1 + latent L2 between D's features of x and G(x)
        with torch.no_grad():  # a target for G: D's gradients from this step are discarded before D's own step
            real_features = model.discriminator.features(images)
        fake_features = model.discriminator.features(reconstruction)
        terms = self.loss(model.discriminator.head(fake_features).flatten(), real_features, fake_features,
                          reconstruction, images)
        self._step("generator", terms["total"])
        logs = {f"generator/{name}": value.item() for name, value in terms.items()}

        # (2) discriminator: real images -> 1, reconstructions -> 0; a collapsed D restarts (official recipe)
        logs["discriminator"], reset = train_discriminator(self, model.discriminator, images, reconstruction,
                                                           self.config.reinit_discriminator_below)
        self.discriminator_resets += reset
        return logs

    def end_epoch(self, train_images: torch.Tensor) -> None:
        """Called by the trainer after each epoch: score statistics from normal training images only."""
        self.model.fit_score_statistics(train_images)

    @torch.no_grad()
    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Fixed inputs and their reconstructions; normal / novel test inputs above their reconstructions,
        and residual rows (input / G(x) / |x - G(x)|) of test images."""
        model = self.model
        model.eval()
        grids = {"images/inputs": images, "images/reconstructions": model.reconstruct(images),
                 **test_reconstruction_grids(model.reconstruct, test_normal, test_novel)}
        for group, batch in (("test_normal", test_normal), ("test_novel", test_novel)):
            if batch is not None and len(batch):
                grids[f"images/{group}_residuals"] = torch.cat([row for _, row in model.residual_panel(batch[:N_RESIDUAL_IMAGES])])
        return grids
