"""f-AnoGAN: a WGAN-GP trained on normal images, then an encoder into its latent space (izi_f);
novelty = how badly G(E(x)) explains x, in pixels and in the critic's features, in one forward pass."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import ConvDownStack, LatentDecoder, LatentEncoder, init_dcgan_weights
from ..base import NoveltyModel, Panel, draw_latent
from .config import FAnoGANConfig
from .loss import izif_residuals

SCORE_COMPONENTS = ("pixel", "feature")  # ||x - G(E(x))||^2 / n_pixels, ||f(x) - f(G(E(x)))||^2 / n_features


class WassersteinCritic(nn.Module):
    """Image (B, C, S, S) -> one unbounded score (B,); ``features`` gives the last feature map (B, W', 4, 4),
    f of the izi_f loss. ``ConvCritic``'s layout without BatchNorm: the gradient penalty is taken per image,
    and BatchNorm would make each image's score depend on the others of its batch (WGAN-GP, section 4).
    The head has no bias: the critic's loss is a difference of means and its penalty a gradient, so a
    constant offset never gets a gradient."""

    def __init__(self, in_channels: int, width: int, image_size: int):
        super().__init__()
        self.features = ConvDownStack(in_channels, width, image_size, batch_norm=False)
        self.head = nn.Conv2d(self.features.out_channels, 1, 4, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images)).flatten()


class BoundedEncoder(nn.Module):
    """DCGAN encoder ending in tanh: image (B, C, S, S) -> latent (B, nz, 1, 1) in (-1, 1), the support of
    the generator's prior U(-1, 1)."""

    def __init__(self, in_channels: int, width: int, image_size: int, latent_dim: int):
        super().__init__()
        self.body = LatentEncoder(in_channels, width, image_size, latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(images))


class FAnoGAN(NoveltyModel):
    """z ~ U(-1, 1) -> G(z); critic D with feature map f; encoder E: x -> z. Score: izi_f residual of G(E(x))."""

    def __init__(self, config: FAnoGANConfig):
        super().__init__()
        self.config = config
        size, channels = config.image_size, config.in_channels
        self.generator = LatentDecoder(channels, config.generator_width, size, config.latent_dim)
        self.critic = WassersteinCritic(channels, config.critic_width, size)
        self.encoder = BoundedEncoder(channels, config.encoder_width, size, config.latent_dim)
        init_dcgan_weights(self)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.latent_dim, 1, 1)

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ U(-1, 1)^nz, shaped (B, nz, 1, 1), on the model's device (``draw_latent``)."""
        return draw_latent(self, self.latent_shape, batch_size, "uniform", generator)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """G(E(x))."""
        return self.generator(self.encoder(images))

    def residuals(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(G(E(x)), pixel residual (B,), feature residual (B,)): the two terms of izi_f (``loss.izif_residuals``)."""
        reconstruction = self.reconstruct(images)
        pixel, feature = izif_residuals(images, reconstruction, self.critic.features(images),
                                        self.critic.features(reconstruction))
        return reconstruction, pixel, feature

    score_name = "izi_f residual (pixel + kappa x critic feature)"
    score_components_normalised = False  # the paper's raw sum, no training-image statistics

    @property
    def score_component_names(self) -> tuple[str, ...]:
        return SCORE_COMPONENTS

    @property
    def score_component_weights(self) -> dict[str, float]:
        return {"pixel": 1.0, "feature": float(self.config.kappa)}

    def score_components(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2): the pixel and the critic-feature residual of G(E(x)) (``residuals``)."""
        _, pixel, feature = self.residuals(images)
        return torch.stack([pixel, feature], dim=1)

    def combine_score_components(self, components: torch.Tensor) -> torch.Tensor:
        return components[:, 0] + self.config.kappa * components[:, 1]

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): ||x - G(E(x))||^2 / n_pixels + kappa ||f(x) - f(G(E(x)))||^2 / n_features."""
        return self.combine_score_components(self.score_components(images))

    def diagnostics(self) -> dict:
        """How the score combines the two residuals: raw, weighted by 1 and kappa."""
        return {"score_combination": {"components": list(SCORE_COMPONENTS), "weights": self.score_component_weights,
                                      "normalised": False}}

    @torch.no_grad()
    def residual_panel(self, images: torch.Tensor) -> Panel:
        """Labelled rows (each (B, C, H, W) in [-1, 1]): input, G(E(x)), residual |x - G(E(x))|."""
        reconstruction = self.reconstruct(images)
        return [("input", images), ("G(E(x))", reconstruction), ("|x - G(E(x))|", (images - reconstruction).abs() - 1)]

    def figure_panels(self, images: torch.Tensor) -> dict[str, Panel]:
        return {"residuals": self.residual_panel(images)}

    def gradcam_heads(self) -> dict[str, nn.Module]:
        return {"critic": self.critic}
