"""Attention OCGAN networks: vanilla OCGAN + attention-map generator + guiding classifier + masked OCGAN."""
from __future__ import annotations

import torch

from ...layers import init_dcgan_weights
from ...layers.attention import AttentionMapGenerator, apply_mask
from ..components import ConvCritic, evaluating
from ..components.rotations import ROTATIONS, UprightEvidence, rotation_nll
from ..ocgan.torch_model import OCGAN
from .config import AttnOCGANConfig


GAN_COMPONENTS = ("first_gan", "masked_gan")  # reconstruction errors of the first GAN on x, the masked GAN on x * M
GUIDE_COMPONENTS = ("guide_rotation_x", "guide_rotation_masked")  # rotation NLL of the guide on x and on x * M


class AttnOCGAN(OCGAN):
    """The first GAN is this OCGAN itself (``encoder``, ``decoder``, ...); with ``attention`` on it adds

    - ``attention``: CBAM attention-map generator over the first encoder's stage features,
    - ``guide``: guiding classifier on masked and unmasked inputs: which quarter turn was applied
      (``guide_task="rotation"``, the default: 4 logits) or normal vs pseudo-anomaly (1 logit),
    - ``masked_gan``: a second OCGAN trained on ``x * M``,
    - buffers ``score_mean``/``score_std`` (K,): statistics of the K score components (the two
      reconstruction errors, with ``guide_evidence_score`` also the guide's rotation NLL on x and
      x * M) on normal training images, used to normalise them before they are combined;
    - with ``guide_evidence_score`` or ``score_weights`` other than "fixed": buffer
      ``score_weight_vector`` (K,), the components' weights (chosen on the validation split with
      "validation").
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
        n_components = len(self.all_component_names)
        self.register_buffer("score_mean", torch.zeros(n_components))
        self.register_buffer("score_std", torch.ones(n_components))
        if config.guide_evidence_score or config.score_weights != "fixed":
            self.register_buffer("score_weight_vector", torch.tensor(
                [self.fixed_component_weights[name] for name in self.all_component_names]))
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
    def all_component_names(self) -> tuple[str, ...]:
        return GAN_COMPONENTS + (GUIDE_COMPONENTS if self.config.guide_evidence_score else ())

    @property
    def score_component_names(self) -> tuple[str, ...]:
        return self.all_component_names if self.masked_gan_active else ()

    @property
    def fixed_component_weights(self) -> dict[str, float]:
        """The config's weights: 1/K each with ``score_weights="equal"``; else the GANs by
        ``masked_score_weight`` and the guide's evidence 0 (the start of a validation choice)."""
        if self.config.score_weights == "equal":
            return {name: 1.0 / len(self.all_component_names) for name in self.all_component_names}
        weight = float(self.config.masked_score_weight)
        return {"first_gan": 1.0 - weight, "masked_gan": weight, **{name: 0.0 for name in GUIDE_COMPONENTS}}

    @property
    def score_component_weights(self) -> dict[str, float]:
        if not self.masked_gan_active:
            return {}
        if hasattr(self, "score_weight_vector"):
            return dict(zip(self.all_component_names, self.score_weight_vector.tolist()))
        return {name: self.fixed_component_weights[name] for name in self.all_component_names}

    @property
    def chooses_score_weights_on_validation(self) -> bool:
        return bool(self.config.attention) and self.config.score_weights == "validation"

    @property
    def score_weight_pseudo_anomalies(self) -> str | None:
        choice = self.config.score_weights
        return choice.removeprefix("pseudo-") if self.config.attention and choice.startswith("pseudo-") else None

    def set_score_component_weights(self, weights: dict[str, float]) -> None:
        """Set the components' weights (chosen by the trainer: ``score_weights="validation"`` on the
        validation split of training images, ``"pseudo-*"`` on normal images vs pseudo-anomalies)."""
        if not hasattr(self, "score_weight_vector"):
            raise ValueError("this model's score weights are fixed by its config (score_weights='fixed' without the guide's evidence)")
        self.score_weight_vector.copy_(torch.tensor([float(weights[name]) for name in self.all_component_names]))

    def normalise_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, K) raw components -> z-scores with the normal-training-image statistics."""
        return (components - self.score_mean) / self.score_std

    def diagnostics(self) -> dict:
        """How the score combines its components: their weights and the normal-training-image
        statistics each is normalised with (``active`` False: the masked GAN never trained, so the
        score is the first GAN's alone)."""
        if not self.config.attention:
            return {}
        return {"score_combination": {
            "masked_score_weight": float(self.config.masked_score_weight), "active": self.masked_gan_active,
            "component_mean": self.score_mean.tolist(), "component_std": self.score_std.tolist(),
            "components": list(self.all_component_names), "score_weights": self.config.score_weights,
            "weights": self.score_component_weights}}

    def score_components(self, images: torch.Tensor) -> torch.Tensor:
        """(B, K): reconstruction MSE of the first GAN on x and of the masked GAN on x * M; with
        ``guide_evidence_score`` also the guide's rotation NLL on x and on x * M."""
        first = super().score(images)
        masked = apply_mask(images, self.attention_maps(images))
        columns = [first, self.masked_gan.score(masked)]
        if self.config.guide_evidence_score:
            columns += [self.rotation_nll(images), self.rotation_nll(masked)]
        return torch.stack(columns, dim=1)

    def rotation_nll(self, images: torch.Tensor) -> torch.Tensor:
        """(B,): the rotation guide's negative log-likelihood of the true quarter turn, averaged over
        the four turns of each image (``components.rotations.rotation_nll``). Call in eval mode."""
        return rotation_nll(self.guide, images)

    @property
    def score_name(self) -> str:
        if not self.masked_gan_active:
            return super().score_name
        return "normalised score components, combined"

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,): with attention, the weighted sum of the K components
        (``score_components``), each z-normalised with normal-training-image statistics
        (``fit_score_statistics``); without attention, or before the masked GAN has trained,
        vanilla OCGAN's score."""
        if not self.masked_gan_active:
            return super().score(images)
        return self.combine_score_components(self.score_components(images))

    def combine_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, K) raw components (``score_components``) -> (B,) novelty score: each z-normalised with
        the normal-training-image statistics, then weighted (``score_component_weights``)."""
        normalised = self.normalise_score_components(components)
        weights = torch.tensor(list(self.score_component_weights.values()))
        return normalised @ weights.to(normalised)

    @torch.no_grad()
    def fit_score_statistics(self, train_images: torch.Tensor, batch_size: int = 1000) -> None:
        """Set ``score_mean``/``score_std`` from the normal *training* images (never test data)."""
        if not self.config.attention or len(train_images) == 0:
            return
        with evaluating(self):
            components = torch.cat([self.score_components(train_images[start:start + batch_size])
                                    for start in range(0, len(train_images), batch_size)])
        self.score_mean.copy_(components.mean(0))
        self.score_std.copy_(components.std(0).clamp_min(1e-8) if len(components) > 1 else torch.ones(components.shape[1]))
