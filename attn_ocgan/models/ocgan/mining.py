"""Informative-negative mining (OCGAN section 3.3)."""
from __future__ import annotations

import torch

from ..components import bce_to


def mine_informative_negatives(decoder, classifier, latent: torch.Tensor, steps: int, step_size: float) -> torch.Tensor:
    """Move uniform latents towards regions the classifier flags as poor (C(De(l)) -> 0).

    The latent being optimised is a fresh leaf with ``requires_grad=True`` and the loss
    depends on it through De and C; gradients are taken with ``torch.autograd.grad`` for
    that leaf only, so no parameter's ``.grad`` or value changes. Latents stay in the
    box [-1, 1] that the tanh-bounded encoder covers. Returns a detached (B, C, L, L).
    """
    mined = latent.detach().clone()
    for _ in range(steps):
        mined.requires_grad_(True)
        # Push the classifier's "in-class" logit down: minimise BCE against label 0.
        loss = bce_to(classifier(decoder(mined)), 0.0)
        (gradient,) = torch.autograd.grad(loss, mined)
        mined = (mined.detach() - step_size * gradient).clamp_(-1.0, 1.0)
    return mined.detach()
