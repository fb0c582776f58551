"""GANomaly generator loss; weights are constructor arguments."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GANomalyLoss(nn.Module):
    """adversarial * L2(f(x), f(x')) + contextual * L1(x', x) + encoder * L2(z', z)."""

    def __init__(self, adversarial_weight: float, contextual_weight: float, encoder_weight: float):
        super().__init__()
        self.adversarial_weight = adversarial_weight
        self.contextual_weight = contextual_weight
        self.encoder_weight = encoder_weight

    def forward(self, real_features, fake_features, reconstruction, images, latent, second_latent) -> dict[str, torch.Tensor]:
        terms = {"adversarial": F.mse_loss(fake_features, real_features.detach()),
                 "contextual": F.l1_loss(reconstruction, images),
                 "encoder": F.mse_loss(second_latent, latent)}
        terms["total"] = (self.adversarial_weight * terms["adversarial"] + self.contextual_weight * terms["contextual"]
                          + self.encoder_weight * terms["encoder"])
        return terms
