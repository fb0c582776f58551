"""AnoGAN: a DCGAN trained on normal images; novelty = how badly the best latent explains an image."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import LatentDecoder, init_dcgan_weights
from ..base import NoveltyModel, draw_latent
from ..components import ConvCritic
from .config import AnoGANConfig


class AnoGAN(NoveltyModel):
    def __init__(self, config: AnoGANConfig):
        super().__init__()
        self.config = config
        self.generator = LatentDecoder(config.in_channels, config.generator_width, config.image_size, config.latent_dim)
        self.discriminator = ConvCritic(config.in_channels, config.discriminator_width, config.image_size)
        init_dcgan_weights(self)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.latent_dim, 1, 1)

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), shaped (B, nz, 1, 1), on the model's device (``draw_latent``)."""
        return draw_latent(self, self.latent_shape, batch_size, "normal", generator)

    def anomaly_loss(self, images: torch.Tensor, latent: torch.Tensor,
                     image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Per image (B,): (1 - lambda) * sum |x - G(z)| + lambda * sum |f(x) - f(G(z))|, f = D's features.

        ``image_features`` = f(images) may be passed in: it does not change during a search.
        """
        generated = self.generator(latent)
        residual = (images - generated).abs().flatten(1).sum(1)
        if image_features is None:
            image_features = self.discriminator.features(images)
        discrimination = (image_features - self.discriminator.features(generated)).abs().flatten(1).sum(1)
        weight = self.config.discrimination_weight
        return (1 - weight) * residual + weight * discrimination

    def search_latent(self, images: torch.Tensor, steps: int | None = None):
        """Batched latent search: Adam on a leaf latent per image; G and D weights are not touched.

        Every image starts from the same latent z0, drawn with ``search_seed``. Returns the final
        latents (B, nz, 1, 1), their losses (B,) and the mean loss before each step and after the
        last. Call with the model in eval mode (BatchNorm running statistics).
        """
        steps = self.config.search_steps if steps is None else steps
        generator = torch.Generator().manual_seed(self.config.search_seed)
        with torch.inference_mode(False), torch.enable_grad():
            images = images.detach().clone()
            with torch.no_grad():
                image_features = self.discriminator.features(images)
            # One start z0 for every image: each latent's Adam steps depend on its own image only
            # (per-element updates, BatchNorm in eval mode), so an image's score does not depend
            # on the batch it is scored in or its position there.
            start = self.sample_latent(1, generator)
            latent = start.expand(len(images), *start.shape[1:]).clone().requires_grad_(True)
            optimizer = torch.optim.Adam([latent], lr=self.config.search_lr)
            history = []
            for _ in range(steps):
                loss = self.anomaly_loss(images, latent, image_features).sum()
                history.append(loss.item() / len(images))
                gradient, = torch.autograd.grad(loss, latent)  # no gradients into G or D
                optimizer.zero_grad(set_to_none=True)
                latent.grad = gradient
                optimizer.step()
            latent = latent.detach()
            with torch.no_grad():
                final = self.anomaly_loss(images, latent, image_features)
            history.append(final.mean().item())
        return latent, final, history

    score_name = "anomaly loss after the latent search"
    # Evaluation scores this many normal training images (seeded subset) for the train-normal
    # statistics and histogram, not all: each score costs a whole latent search.
    train_statistics_images = 1000
    exportable = False  # the score is a per-image latent search with gradients: no fixed graph to trace

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): the anomaly loss after the latent search."""
        return self.search_latent(images)[1]

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """G(z*): the generator's image at the latent the search found for each image."""
        return self.generator(self.search_latent(images)[0])

    @torch.no_grad()
    def residual_panel(self, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Labelled rows (each (B, C, H, W) in [-1, 1]): input, G(z*), residual |x - G(z*)|."""
        generated = self.reconstruct(images)
        return [("input", images), ("G(z*)", generated), ("|x - G(z*)|", (images - generated).abs() - 1)]

    def figure_panels(self, images: torch.Tensor) -> dict[str, list[tuple[str, torch.Tensor]]]:
        return {"residuals": self.residual_panel(images)}

    def gradcam_heads(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}
