"""Adversarial losses shared by the GAN recipes."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_to(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of logits against a constant label (1 = real / in-class)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator/classifier loss: real -> 1, fake -> 0."""
    return bce_to(real_logits, 1.0) + bce_to(fake_logits, 0.0)


def train_discriminator(algorithm, discriminator, images: torch.Tensor, reconstruction: torch.Tensor,
                        reinit_below: float) -> tuple[float, bool]:
    """One step of an image discriminator (real images -> 1, reconstructions -> 0) through the
    algorithm's ``discriminator`` optimiser; a discriminator whose loss fell below ``reinit_below`` is
    re-initialised (GANomaly's official recipe against a collapsed D). Returns (loss, whether reset)."""
    from ...layers import init_dcgan_weights

    loss = critic_loss(discriminator(images), discriminator(reconstruction.detach()))
    value = algorithm._step("discriminator", loss)
    reset = value < reinit_below
    if reset:
        init_dcgan_weights(discriminator)
    return value, reset
