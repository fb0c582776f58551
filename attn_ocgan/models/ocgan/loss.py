"""OCGAN losses; weights are constructor arguments."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..components import bce_to


class GeneratorLoss(nn.Module):
    """latent_adv * BCE(Dl(l1), 1) + visual_adv * BCE(Dv(De(l_mined)), 1) + recon * MSE(De(En(x + n)), x)."""

    def __init__(self, recon_weight: float, latent_adv_weight: float, visual_adv_weight: float):
        super().__init__()
        self.recon_weight = recon_weight
        self.latent_adv_weight = latent_adv_weight
        self.visual_adv_weight = visual_adv_weight

    def forward(self, reconstruction, target, latent_logits=None, visual_logits=None) -> dict[str, torch.Tensor]:
        terms = {"recon": F.mse_loss(reconstruction, target)}
        total = self.recon_weight * terms["recon"]
        if latent_logits is not None:
            terms["latent_adv"] = bce_to(latent_logits, 1.0)
            total = total + self.latent_adv_weight * terms["latent_adv"]
        if visual_logits is not None:
            terms["visual_adv"] = bce_to(visual_logits, 1.0)
            total = total + self.visual_adv_weight * terms["visual_adv"]
        terms["total"] = total
        return terms
