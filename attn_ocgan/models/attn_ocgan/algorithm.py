"""Attention OCGAN training recipe.

Per iteration, after the epoch schedule below decides who learns:
  (1-4) the first GAN: the vanilla OCGAN step on x,
  (5)   attention generator + guiding classifier: one step on ``RotationAttentionLoss`` (or
        ``AttentionLoss``), with ``mask_region_weight`` plus the pasted-square term on CutPaste copies,
  (6)   the masked GAN: the vanilla OCGAN step on x * M (masks detached).

Schedule (0-based epoch e; P = pretrain_attention_epochs, W = mask_warmup_epochs):
  e < P          only (5) (pseudo-anomalies are then corrupted normals and decodes of the
                 untrained decoder);
  P <= e < P + W (1-4) and (5); the masked GAN waits for the masks to settle;
  e >= P + W     all three. Each GAN's own schedule (mining start, AE warm-up) counts from its
                 own first epoch. ``reset_masked_gan_at`` re-initialises the masked GAN (weights,
                 BatchNorm statistics, averaged copies) and its optimisers at the start of that
                 (1-based) epoch; its schedule keeps counting from P + W (no second warm-up).
"""
from __future__ import annotations

import torch

from ...config import TrainConfig
from ...data.pseudo_anomalies import cut_paste, make_pseudo_anomalies
from ...errors import UserError
from ...layers.attention import apply_mask
from ..base import Algorithm, adam
from ..components import evaluating
from ..components.rotations import random_rotations
from ..ocgan.algorithm import OCGANAlgorithm
from ..ocgan.mining import mine_informative_negatives
from .config import AttnOCGANConfig
from .loss import AttentionLoss, MaskRegularisers, RotationAttentionLoss, pasted_region_loss
from .torch_model import AttnOCGAN

N_GRID_IMAGES = 8


class AttnOCGANAlgorithm(Algorithm):
    """Owns the optimisers of both GANs and of the attention branch; attention off = vanilla OCGAN."""

    progress_loss = "generator/recon"  # the first GAN's reconstruction, as vanilla OCGAN shows it

    def __init__(self, model: AttnOCGAN, config: AttnOCGANConfig, train: TrainConfig):
        self.model = model
        self.config = config
        self.train_config = train
        self.first = OCGANAlgorithm(model, config, train)
        self.outlier_images: torch.Tensor | None = None  # set by the trainer for --outlier-exposure
        if config.attention:
            self.masked = OCGANAlgorithm(model.masked_gan, config, train)
            regularisers = MaskRegularisers(config.mask_area_weight, config.mask_area_target, config.mask_binary_weight,
                                            config.mask_area_constraint, config.mask_area_barrier_t, config.mask_tv_weight)
            if config.guide_task == "rotation":
                self.attention_loss = RotationAttentionLoss(config.guide_weight, config.mask_complement_weight, regularisers)
            else:
                self.attention_loss = AttentionLoss(config.guide_weight, config.mask_complement_weight, regularisers)
            self.attention_optimizer = adam([model.attention, model.guide], train)

    @property
    def first_gan_start(self) -> int:
        return self.config.pretrain_attention_epochs

    @property
    def masked_gan_start(self) -> int:
        return self.config.pretrain_attention_epochs + self.config.mask_warmup_epochs

    # -- one iteration -------------------------------------------------------------
    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        if not self.config.attention:
            return self.first.train_step(images, epoch)
        model = self.model
        logs: dict[str, float] = {}
        if epoch >= self.first_gan_start:
            logs.update(self.first.train_step(images, epoch - self.first_gan_start))
        # The guide's batch: the normal images, then rotated copies of them (labels: the quarter turns)
        # or pseudo-anomalies (labels: 1 normal, 0 not). One encoder pass serves the attention step
        # and the masked GAN's masks.
        if self.config.guide_task == "rotation":
            others, turns = random_rotations(images)
            labels = torch.cat([torch.zeros_like(turns), turns])
        else:
            others = self.pseudo_anomalies(images)
            labels = torch.cat([torch.ones(len(images)), torch.zeros(len(others))]).to(images.device)
        guide_batch = torch.cat([images, others])
        features = model.encoder_features(guide_batch)
        pasted = self.pasted_copies(images) if self.config.mask_region_weight > 0 else None
        logs.update(self._attention_step(guide_batch, labels, features, pasted))
        if epoch >= self.masked_gan_start:
            with torch.no_grad(), evaluating(model.attention):
                masks = model.attention([level[: len(images)] for level in features])
            masked_logs = self.masked.train_step(apply_mask(images, masks), epoch - self.masked_gan_start)
            self.model.masked_gan_steps += 1
            logs.update({f"masked_gan/{name}": value for name, value in masked_logs.items()})
        return logs

    outlier_images_setting = ("attention on with guide_task=pseudo_anomaly and guide_evidence_score=false, e.g. "
                              "--config configs/attention/first-recipe.yaml")

    @classmethod
    def uses_outlier_images(cls, config: AttnOCGANConfig) -> bool:
        # the pseudo-anomaly guide takes them as negatives; the rotation guide sees normal images only
        return bool(config.attention) and config.guide_task == "pseudo_anomaly"

    def set_outlier_images(self, images: torch.Tensor) -> None:
        """Outlier exposure: auxiliary negatives (N, C, H, W) in [-1, 1] from another dataset."""
        if not self.config.attention:
            raise UserError("--outlier-exposure needs attention on (the guiding classifier uses it)")
        self.outlier_images = images

    def pseudo_anomalies(self, images: torch.Tensor) -> torch.Tensor:
        """Negatives for the guide: a share ``corruption_fraction`` of corrupted (``corruption``) normal images;
        the rest are decodes of uniform latents by the first GAN's decoder (eval mode, no gradient)
        in the strict one-class setting, a share ``mined_negative_fraction`` of those latents first
        mined towards what the first GAN's classifier rejects (its weights untouched), or random
        outlier-exposure images when those are set."""
        model, config = self.model, self.config
        n_corrupted = int(round(len(images) * config.corruption_fraction))
        n_other = len(images) - n_corrupted
        parts = []
        if n_corrupted:
            corrupted = images[:n_corrupted]
            parts.append(make_pseudo_anomalies(corrupted, config.corruption, shuffle_patch=config.shuffle_patch))
        if n_other and self.outlier_images is not None:
            parts.append(self.outlier_images[torch.randint(len(self.outlier_images), (n_other,))])
        elif n_other:
            latent = model.sample_latent(n_other)
            n_mined = int(round(n_other * config.mined_negative_fraction)) if config.mining_steps > 0 else 0
            with evaluating(model.decoder), evaluating(model.classifier):
                if n_mined:
                    mined = mine_informative_negatives(model.decoder, model.classifier, latent[:n_mined],
                                                       config.mining_steps, config.mining_step_size)
                    latent = torch.cat([mined, latent[n_mined:]])
                with torch.no_grad():
                    parts.append(model.decoder(latent))
        return torch.cat(parts)

    def pasted_copies(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Known-location pseudo-anomalies for ``mask_region_weight``: the first encoder's features of
        CutPaste copies of ``images``, and the pasted squares (B, 1, H, W)."""
        copies, regions = cut_paste(images)
        return self.model.encoder_features(copies), regions

    def _attention_step(self, guide_batch: torch.Tensor, labels: torch.Tensor, features: list[torch.Tensor],
                        pasted: tuple[list[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        # (5) attention generator + guiding classifier on the guide's batch and its labels;
        #     ``features``: the first encoder's stage activations of that batch; ``pasted``: the
        #     features of CutPaste copies and their pasted squares (``pasted_copies``), or None
        model = self.model
        model.attention.train()
        model.guide.train()
        masks = model.attention(features)
        terms = self.attention_loss(model.guide, guide_batch, labels, masks)
        if pasted is not None:  # a term of the attention generator alone
            pasted_features, regions = pasted
            pasted_masks = model.attention(pasted_features)
            terms["mask_region"] = pasted_region_loss(pasted_masks, regions)
            terms["mask_on_pasted_square"] = ((pasted_masks * regions).sum() / regions.sum().clamp_min(1.0)).detach()
            extra = self.config.mask_region_weight * terms["mask_region"] + self.attention_loss.regularisers(pasted_masks)[0]
            terms["attention_total"] = terms["attention_total"] + extra
            terms["total"] = terms["total"] + extra
        self.attention_optimizer.zero_grad(set_to_none=True)
        if self.attention_loss.adversarial:
            # The complement (erase) game: A and G minimise different losses of the same logits.
            guide_parameters, attention_parameters = list(model.guide.parameters()), list(model.attention.parameters())
            guide_gradients = torch.autograd.grad(terms["guide_total"], guide_parameters, retain_graph=True)
            attention_gradients = torch.autograd.grad(terms["attention_total"], attention_parameters)
            for parameter, gradient in zip(guide_parameters + attention_parameters, guide_gradients + attention_gradients):
                parameter.grad = gradient
        else:
            terms["total"].backward()
        self.attention_optimizer.step()
        return {f"attention/{name}": value.item() for name, value in terms.items()}

    def start_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (0-based)."""
        if self.config.attention and self.config.reset_masked_gan_at and epoch + 1 == self.config.reset_masked_gan_at:
            self.model.masked_gan.reset_parameters()
            self.model.masked_gan_steps.zero_()
            self.masked = OCGANAlgorithm(self.model.masked_gan, self.config, self.train_config)

    def end_epoch(self, train_images: torch.Tensor) -> None:
        """Called by the trainer after each epoch: score statistics from normal training images only."""
        self.model.fit_score_statistics(train_images)

    # -- TensorBoard -------------------------------------------------------------------
    @torch.no_grad()
    def image_grids(self, images, latent, test_normal=None, test_novel=None) -> dict[str, torch.Tensor]:
        """The first GAN's grids; with attention, per test group rows input / mask / masked input /
        first-GAN reconstruction / masked-GAN reconstruction (``N_GRID_IMAGES`` per row)."""
        grids = self.first.image_grids(images, latent, test_normal, test_novel)
        if not self.config.attention:
            return grids
        self.model.eval()
        for group, batch in (("test_normal", test_normal), ("test_novel", test_novel)):
            if batch is not None and len(batch):
                grids[f"masks/{group}"] = torch.cat([rows for _, rows in self.model.attention_panel(batch[:N_GRID_IMAGES])])
        return grids

    @torch.no_grad()
    def histograms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.config.attention:
            return {}
        self.model.eval()
        masks = self.model.attention_maps(images)
        return {"masks/values": masks.flatten(), "masks/area_per_image": masks.flatten(1).mean(1)}

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        if not self.config.attention:
            return self.first.state_dict()
        return {"first": self.first.state_dict(), "masked": self.masked.state_dict(),
                "attention": self.attention_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not self.config.attention:
            return self.first.load_state_dict(state)
        self.first.load_state_dict(state["first"])
        self.masked.load_state_dict(state["masked"])
        self.attention_optimizer.load_state_dict(state["attention"])
