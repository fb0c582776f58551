"""Skip-GANomaly generator loss; weights are constructor arguments."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..components import bce_to


class SkipGANomalyLoss(nn.Module):
    """adversarial * BCE(D(x'), real) + contextual * L1(x', x) + latent * L2(f(x'), f(x))."""

    def __init__(self, adversarial_weight: float, contextual_weight: float, latent_weight: float):
        super().__init__()
        self.adversarial_weight = adversarial_weight
        self.contextual_weight = contextual_weight
        self.latent_weight = latent_weight

    def forward(self, fake_logits, real_features, fake_features, reconstruction, images) -> dict[str, torch.Tensor]:
        terms = {"adversarial": bce_to(fake_logits, 1.0),  # non-saturating: G(x) should pass for real
                 "contextual": F.l1_loss(reconstruction, images),
                 "latent": F.mse_loss(fake_features, real_features.detach())}
        terms["total"] = (self.adversarial_weight * terms["adversarial"] + self.contextual_weight * terms["contextual"]
                          + self.latent_weight * terms["latent"])
        return terms
