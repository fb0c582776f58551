"""Attention OCGAN networks: vanilla OCGAN + attention-map generator + guiding classifier + masked OCGAN."""
from __future__ import annotations

import torch
from ...layers import init_dcgan_weights
from ...layers.attention import AttentionMapGenerator, apply_mask
from ..components import ConvCritic, evaluating
from ..ocgan.torch_model import OCGAN
from .config import AttnOCGANConfig
from .loss import ROTATIONS


class UprightEvidence(torch.nn.Module):
    """A rotation guide as one logit per image for Grad-CAM: the log-probability it gives to
    "not rotated". ``features`` is the guide's, so Grad-CAM targets the same layer."""

    def __init__(self, guide: ConvCritic):
        super().__init__()
        self.guide = guide
        self.features = guide.features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.guide(images), dim=1)[:, 0]


class AttnOCGAN(OCGAN):
    """The first GAN is this OCGAN itself (``encoder``, ``decoder``, ...); with ``attention`` on it adds

    - ``attention``: CBAM attention-map generator over the first encoder's stage features,
    - ``guide``: guiding classifier (normal vs pseudo-anomaly, masked and unmasked inputs),
    - ``masked_gan``: a second OCGAN trained on ``x * M``,
    - buffers ``score_mean``/``score_std`` (2,): statistics of the two reconstruction errors on
      normal training images, used to normalise them before they are combined.
    """

    def __init__(self, config: AttnOCGANConfig):
        super().__init__(config)  # builds and initialises the first GAN exactly as vanilla OCGAN
        if not config.attention:
            return
        self.attention = AttentionMapGenerator(self.encoder.features.stage_channels, config.image_size,
                                               config.cbam_reduction, config.temperature)
        # one logit (normal vs pseudo-anomaly), or one per quarter turn (guide_task "rotation")
        self.guide = ConvCritic(config.in_channels, config.guide_width, config.image_size,
                                outputs=ROTATIONS if config.guide_task == "rotation" else 1)
        init_dcgan_weights(self.guide)
        self.masked_gan = OCGAN(config)
        self.register_buffer("score_mean", torch.zeros(2))
        self.register_buffer("score_std", torch.ones(2))
        # Training steps the masked GAN has taken; before the first, only the first GAN scores
        # (an untrained decoder's error ranks images by their brightness, not their class).
        self.register_buffer("masked_gan_steps", torch.zeros((), dtype=torch.long))

    # -- attention -------------------------------------------------------------------
    def encoder_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The first encoder's stage activations, the attention generator's input.

        Read in eval mode and without gradient: the attention branch never changes the first
        GAN's weights or BatchNorm statistics, and masks at training and test time see the
        same features.
        """
        with torch.no_grad(), evaluating(self.encoder):
            return self.encoder.features.forward_features(images)

    def attention_maps(self, images: torch.Tensor) -> torch.Tensor | None:
        """Masks (B, 1, H, W) in (0, 1) for images (B, C, H, W); None with attention off."""
        if not self.config.attention:
            return None
        return self.attention(self.encoder_features(images))

    def figure_panels(self, images: torch.Tensor) -> dict[str, list[tuple[str, torch.Tensor]]]:
        return {"masks": self.attention_panel(images)} if self.config.attention else {}

    def gradcam_heads(self) -> dict:
        heads = super().gradcam_heads()
        if not self.config.attention:
            return heads
        return {**heads, "guide": self.guide if self.guide.outputs == 1 else UprightEvidence(self.guide)}

    @torch.no_grad()
    def attention_panel(self, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Labelled rows (each (B, C, H, W) in [-1, 1]) for figures: input, mask, masked input,
        first-GAN reconstruction, masked-GAN reconstruction. Call in eval mode."""
        masks = self.attention_maps(images)
        masked = apply_mask(images, masks)
        return [("input", images), ("mask", (masks * 2 - 1).expand_as(images)), ("x * M", masked),
                ("recon. GAN 1", self.reconstruct(images)), ("recon. masked GAN", self.masked_gan.reconstruct(masked))]

    # -- scoring ---------------------------------------------------------------------
    @property
    def masked_gan_active(self) -> bool:
        """The masked GAN has trained, so the score combines both GANs' errors."""
        return bool(self.config.attention) and int(self.masked_gan_steps) > 0

    @property
    def score_component_names(self) -> tuple[str, ...]:
        return ("first_gan", "masked_gan") if self.masked_gan_active else ()

    @property
    def score_component_weights(self) -> dict[str, float]:
        weight = float(self.config.masked_score_weight)
        return {"first_gan": 1.0 - weight, "masked_gan": weight} if self.masked_gan_active else {}

    def diagnostics(self) -> dict:
        """How the score combines the two errors: the masked GAN's weight and the normal-training-image
        statistics each error is normalised with (``active`` False: the masked GAN never trained, so
        the score is the first GAN's alone)."""
        if not self.config.attention:
            return {}
        return {"score_combination": {
            "masked_score_weight": float(self.config.masked_score_weight), "active": self.masked_gan_active,
            "component_mean": self.score_mean.tolist(), "component_std": self.score_std.tolist(),
            "components": ["first_gan", "masked_gan"]}}

    def score_components(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 2): reconstruction MSE of the first GAN on x and of the masked GAN on x * M."""
        first = super().score(images)
        masked = apply_mask(images, self.attention_maps(images))
        second = self.masked_gan.score(masked)
        return torch.stack([first, second], dim=1)

    @property
    def score_name(self) -> str:
        if not self.masked_gan_active:
            return super().score_name
        return "normalised errors of both GANs, combined"

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): with attention, the weighted sum of the two errors, each z-normalised
        with normal-training-image statistics (``fit_score_statistics``); without attention, or
        before the masked GAN has trained, vanilla OCGAN's score."""
        if not self.masked_gan_active:
            return super().score(images)
        return self.combine_score_components(self.score_components(images))

    def combine_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, 2) raw errors (``score_components``) -> (B,) novelty score: each z-normalised with the
        normal-training-image statistics, weighted ``1 - masked_score_weight`` / ``masked_score_weight``."""
        normalised = (components - self.score_mean) / self.score_std
        weight = self.config.masked_score_weight
        return (1.0 - weight) * normalised[:, 0] + weight * normalised[:, 1]

    @torch.no_grad()
    def fit_score_statistics(self, train_images: torch.Tensor, batch_size: int = 1000) -> None:
        """Set ``score_mean``/``score_std`` from the normal *training* images (never test data)."""
        if not self.config.attention or len(train_images) == 0:
            return
        with evaluating(self):
            components = torch.cat([self.score_components(train_images[start:start + batch_size])
                                    for start in range(0, len(train_images), batch_size)])
        self.score_mean.copy_(components.mean(0))
        self.score_std.copy_(components.std(0).clamp_min(1e-8) if len(components) > 1 else torch.ones(2))
