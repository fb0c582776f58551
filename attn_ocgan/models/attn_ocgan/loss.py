"""Losses of the attention branch; weights are constructor arguments.

Two guide tasks (``guide_task``):
- ``pseudo_anomaly`` (the first recipe): the guide separates normal images from pseudo-anomalies
  (``AttentionLoss``). Solvable from every pixel, so nothing forces the mask to choose.
- ``rotation``: the guide predicts which of four 90-degree rotations was applied to a *normal*
  image (GeoTrans, Golan & El-Yaniv 2018; Hendrycks et al. 2019), on ``x``, on the kept part
  ``x * M`` (keep) and on the erased part ``x * (1 - M)`` (erase: the attention generator pushes
  the guide to chance there), so the evidence must sit inside M (``RotationAttentionLoss``).
Both share the mask regularisers (``MaskRegularisers``): the area prior (a quadratic pull or an
extended log-barrier upper bound), binarisation and total variation. Either may add known-location
pseudo-anomalies (``pasted_region_loss``): CutPaste copies of the normal images whose masks must mark
the pasted square, under the same regularisers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...layers.attention import apply_mask


def pasted_region_loss(masks: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Mean over images of the mask's negative log on the pixels of the pasted square (``regions``
    (B, 1, H, W), 1 there): zero when each mask marks its pasted square fully. Only the square is
    supervised; what the mask does elsewhere is left to the area constraint and the guide."""
    per_image = -(regions * torch.log(masks.clamp_min(1e-6))).flatten(1).sum(1) / regions.flatten(1).sum(1).clamp_min(1.0)
    return per_image.mean()


def extended_log_barrier(z: torch.Tensor, t: float) -> torch.Tensor:
    """Extended log-barrier of the constraint ``z <= 0`` (Kervadec et al. 2019; used for attention
    areas by Silva-Rodriguez et al.): ``-log(-z) / t`` while ``z <= -1/t^2``, then its linear
    extension ``t z - log(1/t^2) / t + 1/t``, so it is finite and differentiable everywhere and
    grows steeply once the constraint is violated. Elementwise."""
    threshold = -1.0 / t ** 2
    inside = -torch.log(-z.clamp(max=threshold)) / t
    outside = t * z - math.log(1.0 / t ** 2) / t + 1.0 / t
    return torch.where(z <= threshold, inside, outside)


def total_variation(masks: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring mask pixels (B, 1, H, W) -> scalar."""
    return (masks[..., 1:, :] - masks[..., :-1, :]).abs().mean() + (masks[..., :, 1:] - masks[..., :, :-1]).abs().mean()


class MaskRegularisers(nn.Module):
    """Terms on the masks alone. ``area_constraint``: "quadratic" pulls each mask's mean to
    ``area_target`` (``area_prior``); "barrier" only bounds it from above (``area_barrier``: an
    extended log-barrier at slope ``barrier_t``); plus ``binary_weight * mean(M (1 - M))`` and
    ``tv_weight * total_variation(M)``."""

    def __init__(self, area_weight: float, area_target: float, binary_weight: float = 0.0,
                 area_constraint: str = "quadratic", barrier_t: float = 25.0, tv_weight: float = 0.0):
        super().__init__()
        if area_constraint not in ("quadratic", "barrier"):
            raise ValueError(f"area_constraint must be quadratic or barrier, got {area_constraint!r}")
        self.area_weight, self.area_target, self.binary_weight = area_weight, area_target, binary_weight
        self.area_constraint, self.barrier_t, self.tv_weight = area_constraint, barrier_t, tv_weight

    def forward(self, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        area = masks.flatten(1).mean(1)
        terms = {"mask_area": area.mean().detach(), "mask_decisiveness": (masks - 0.5).abs().mean().detach()}
        if self.area_constraint == "quadratic":
            terms["area_prior"] = (area - self.area_target).pow(2).mean()
        else:
            terms["area_barrier"] = extended_log_barrier(area - self.area_target, self.barrier_t).mean()
        terms["mask_binary"] = (masks * (1 - masks)).mean()
        total = self.area_weight * terms.get("area_prior", terms.get("area_barrier")) + self.binary_weight * terms["mask_binary"]
        if self.tv_weight > 0:
            terms["mask_tv"] = total_variation(masks)
            total = total + self.tv_weight * terms["mask_tv"]
        return total, terms


class AttentionLoss(nn.Module):
    """Losses of the attention generator A and the guiding classifier G (normal = 1, pseudo-anomaly = 0).

    - ``guide_unmasked``, ``guide_masked``: BCE of G on x and on x * M; the masked term is the one
      that reaches A, so masks keep the pixels that separate the class.
    - ``guide_complement`` (``complement_weight`` > 0): BCE of G on the complement x * (1 - M), and
      ``complement_confusion``: BCE of the same logits against 1/2. G learns to classify the
      complement too, while A is trained to leave nothing in it that G can use: the evidence must
      then sit inside M (the preservation/deletion game of Dabkowski & Gal, NeurIPS 2017). Without
      it a uniform grey mask already solves the guide's task, since x * 0.5 keeps every pixel.
    - the mask terms of ``regularisers`` (``MaskRegularisers``: the area prior or barrier against
      the trivial all-ones / all-zeros masks, binarisation, total variation).

    Totals: ``attention_total`` (what A minimises), ``guide_total`` (what G minimises) and ``total``,
    one scalar whose gradient is right for both when ``complement_weight`` is 0 (A and G then
    share every term's sign; with the complement game they need separate gradients).
    """

    def __init__(self, guide_weight: float, complement_weight: float, regularisers: MaskRegularisers):
        super().__init__()
        self.guide_weight, self.complement_weight, self.regularisers = guide_weight, complement_weight, regularisers

    @property
    def adversarial(self) -> bool:
        """A and G minimise different losses of the same logits (they need separate gradients)."""
        return self.complement_weight > 0 and self.guide_weight > 0

    def forward(self, guide, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images`` (N, C, H, W): normal images and pseudo-anomalies, ``labels`` (N,) 1 and 0 for
        them, ``masks`` (N, 1, H, W) their masks."""
        regularisers, terms = self.regularisers(masks)  # mask_decisiveness: 0 uniform grey, 0.5 binary
        attention_total, guide_total = regularisers, torch.zeros((), device=masks.device)
        if self.guide_weight > 0:
            # One guide batch for all groups (unmasked, masked [, complements]): BatchNorm statistics
            # cannot separate them by themselves, and one large batch runs faster than several small ones.
            groups = [images, apply_mask(images, masks)]
            if self.complement_weight > 0:
                groups.append(apply_mask(images, 1 - masks))
            logits = guide(torch.cat(groups)).chunk(len(groups))
            labels = labels.to(logits[0])
            terms["guide_unmasked"] = F.binary_cross_entropy_with_logits(logits[0], labels)
            terms["guide_masked"] = F.binary_cross_entropy_with_logits(logits[1], labels)
            attention_total = attention_total + self.guide_weight * terms["guide_masked"]
            guide_total = self.guide_weight * (terms["guide_unmasked"] + terms["guide_masked"])
            if self.complement_weight > 0:
                terms["guide_complement"] = F.binary_cross_entropy_with_logits(logits[2], labels)
                terms["complement_confusion"] = F.binary_cross_entropy_with_logits(logits[2], torch.full_like(labels, 0.5))
                attention_total = attention_total + self.guide_weight * self.complement_weight * terms["complement_confusion"]
                guide_total = guide_total + self.guide_weight * self.complement_weight * terms["guide_complement"]
        terms["attention_total"] = attention_total
        terms["guide_total"] = guide_total
        # gw * (unmasked + masked) + regularisers: the gradient of each network's own total when there is no complement game
        terms["total"] = regularisers + guide_total
        return terms


class RotationAttentionLoss(nn.Module):
    """The rotation guide's keep-and-erase game on normal images only. The guide G (4 logits)
    learns the quarter turn of ``x``, of ``x * M`` and, with ``erase_weight`` > 0, of ``x * (1 - M)``;
    the attention generator A minimises the cross-entropy on ``x * M`` (keep: the evidence stays
    inside the mask) and, with ``erase_weight``, the cross-entropy of G on ``x * (1 - M)`` against
    the uniform distribution (erase: nothing G can use is left outside the mask), plus the mask
    regularisers. Totals: ``attention_total`` (A's) and ``guide_total`` (G's)."""

    def __init__(self, guide_weight: float, erase_weight: float, regularisers: MaskRegularisers):
        super().__init__()
        self.guide_weight, self.erase_weight, self.regularisers = guide_weight, erase_weight, regularisers

    @property
    def adversarial(self) -> bool:
        """A and G minimise different losses of the same logits (they need separate gradients)."""
        return self.erase_weight > 0 and self.guide_weight > 0

    def forward(self, guide, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images`` (N, C, H, W) normal images turned by ``labels`` (N,) quarter turns, ``masks`` their masks."""
        regularisers, terms = self.regularisers(masks)
        groups = [images, apply_mask(images, masks)] + ([apply_mask(images, 1 - masks)] if self.erase_weight > 0 else [])
        logits = guide(torch.cat(groups)).chunk(len(groups))  # one batch: shared BatchNorm statistics
        terms["rotation_unmasked"] = F.cross_entropy(logits[0], labels)
        terms["rotation_kept"] = F.cross_entropy(logits[1], labels)
        terms["rotation_accuracy_kept"] = (logits[1].argmax(1) == labels).float().mean().detach()
        attention_total = regularisers + self.guide_weight * terms["rotation_kept"]
        guide_total = self.guide_weight * (terms["rotation_unmasked"] + terms["rotation_kept"])
        if self.erase_weight > 0:
            terms["rotation_erased"] = F.cross_entropy(logits[2], labels)
            terms["erased_confusion"] = -F.log_softmax(logits[2], dim=1).mean(1).mean()  # CE against uniform
            attention_total = attention_total + self.guide_weight * self.erase_weight * terms["erased_confusion"]
            guide_total = guide_total + self.guide_weight * self.erase_weight * terms["rotation_erased"]
        terms["attention_total"], terms["guide_total"] = attention_total, guide_total
        terms["total"] = regularisers + guide_total  # the right gradient for both when not adversarial
        return terms
