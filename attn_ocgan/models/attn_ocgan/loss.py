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
    """guide_weight * [BCE(G(x, p)) + BCE(G(x * M_x, p * M_p))] + area_weight * mean_b (mean(M_b) - target)^2
    + binary_weight * mean(M (1 - M)).

    The guiding classifier G labels normal images 1 and pseudo-anomalies 0, on unmasked and
    on masked inputs; the masked term is the one that reaches the attention generator, so
    masks keep the pixels that separate the class. The area prior stops the trivial masks
    (all ones: masked = unmasked; all zeros: nothing to classify); the binary term (largest at
    M = 0.5) stops the third trivial answer the area prior allows, a uniform grey mask.
    """

    def __init__(self, guide_weight: float, area_weight: float, area_target: float, binary_weight: float = 0.0):
        super().__init__()
        self.guide_weight = guide_weight
        self.area_weight = area_weight
        self.area_target = area_target
        self.binary_weight = binary_weight

    def forward(self, guide, normal, anomalous, normal_masks, anomalous_masks) -> dict[str, torch.Tensor]:
        area = torch.cat([normal_masks, anomalous_masks]).flatten(1).mean(1)
        terms = {"area_prior": (area - self.area_target).pow(2).mean(), "mask_area": area.mean().detach()}
        all_masks = torch.cat([normal_masks, anomalous_masks])
        terms["mask_binary"] = (all_masks * (1 - all_masks)).mean()
        terms["mask_decisiveness"] = (all_masks - 0.5).abs().mean().detach()  # 0: uniform grey, 0.5: binary
        total = self.area_weight * terms["area_prior"] + self.binary_weight * terms["mask_binary"]
        if self.guide_weight > 0:
            # One guide batch for all four groups (unmasked normal / anomalous, masked normal /
            # anomalous): BatchNorm statistics cannot separate them by themselves, and one large
            # batch runs faster than four small ones.
            masked = apply_mask(torch.cat([normal, anomalous]), torch.cat([normal_masks, anomalous_masks]))
            logits = guide(torch.cat([normal, anomalous, masked]))
            labels = torch.cat([torch.ones(len(normal)), torch.zeros(len(anomalous))]).to(logits)
            unmasked_logits, masked_logits = logits.chunk(2)
            terms["guide_unmasked"] = F.binary_cross_entropy_with_logits(unmasked_logits, labels)
            terms["guide_masked"] = F.binary_cross_entropy_with_logits(masked_logits, labels)
            total = total + self.guide_weight * (terms["guide_unmasked"] + terms["guide_masked"])
        terms["total"] = total
        return terms
