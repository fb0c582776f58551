"""Losses of the attention branch; weights are constructor arguments."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...layers.attention import apply_mask


def patch_shuffle(images: torch.Tensor, patch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pseudo-anomalies that keep an image's pixels but break its layout: the (patch x patch)
    tiles of each image are permuted at random. (B, C, H, W) -> (B, C, H, W)."""
    batch, channels, height, width = images.shape
    rows, cols = height // patch, width // patch
    tiles = images[:, :, : rows * patch, : cols * patch].unfold(2, patch, patch).unfold(3, patch, patch)
    tiles = tiles.reshape(batch, channels, rows * cols, patch, patch)
    order = torch.argsort(torch.rand(batch, rows * cols, generator=generator, device=images.device), dim=1)
    tiles = torch.gather(tiles, 2, order[:, None, :, None, None].expand_as(tiles))
    shuffled = tiles.reshape(batch, channels, rows, cols, patch, patch).permute(0, 1, 2, 4, 3, 5)
    out = images.clone()
    out[:, :, : rows * patch, : cols * patch] = shuffled.reshape(batch, channels, rows * patch, cols * patch)
    return out


class AttentionLoss(nn.Module):
    """Losses of the attention generator A and the guiding classifier G (normal = 1, pseudo-anomaly = 0).

    - ``guide_unmasked``, ``guide_masked``: BCE of G on x and on x * M; the masked term is the one
      that reaches A, so masks keep the pixels that separate the class.
    - ``guide_complement`` (``complement_weight`` > 0): BCE of G on the complement x * (1 - M), and
      ``complement_confusion``: BCE of the same logits against 1/2. G learns to classify the
      complement too, while A is trained to leave nothing in it that G can use: the evidence must
      then sit inside M (the preservation/deletion game of Dabkowski & Gal, NeurIPS 2017). Without
      it a uniform grey mask already solves the guide's task, since x * 0.5 keeps every pixel.
    - ``area_prior``: area_weight * mean_b (mean(M_b) - target)^2 against the trivial all-ones /
      all-zeros masks; ``mask_binary``: binary_weight * mean(M (1 - M)) against uniform grey.

    Totals: ``attention_total`` (what A minimises), ``guide_total`` (what G minimises) and ``total``,
    one scalar whose gradient is right for both when ``complement_weight`` is 0 (A and G then
    share every term's sign; with the complement game they need separate gradients).
    """

    def __init__(self, guide_weight: float, area_weight: float, area_target: float, binary_weight: float = 0.0,
                 complement_weight: float = 0.0):
        super().__init__()
        self.guide_weight = guide_weight
        self.area_weight = area_weight
        self.area_target = area_target
        self.binary_weight = binary_weight
        self.complement_weight = complement_weight

    def forward(self, guide, normal, anomalous, normal_masks, anomalous_masks) -> dict[str, torch.Tensor]:
        all_masks = torch.cat([normal_masks, anomalous_masks])
        area = all_masks.flatten(1).mean(1)
        terms = {"area_prior": (area - self.area_target).pow(2).mean(), "mask_area": area.mean().detach()}
        terms["mask_binary"] = (all_masks * (1 - all_masks)).mean()
        terms["mask_decisiveness"] = (all_masks - 0.5).abs().mean().detach()  # 0: uniform grey, 0.5: binary
        regularisers = self.area_weight * terms["area_prior"] + self.binary_weight * terms["mask_binary"]
        attention_total, guide_total = regularisers, torch.zeros((), device=all_masks.device)
        if self.guide_weight > 0:
            # One guide batch for all groups (unmasked normal / anomalous, masked normal / anomalous
            # [, complements]): BatchNorm statistics cannot separate them by themselves, and one
            # large batch runs faster than several small ones.
            both = torch.cat([normal, anomalous])
            groups = [both, apply_mask(both, all_masks)]
            if self.complement_weight > 0:
                groups.append(apply_mask(both, 1 - all_masks))
            logits = guide(torch.cat(groups)).chunk(len(groups))
            labels = torch.cat([torch.ones(len(normal)), torch.zeros(len(anomalous))]).to(logits[0])
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
