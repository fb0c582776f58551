"""WGAN-GP losses (Gulrajani et al., 2017) and f-AnoGAN's izi_f residuals."""
from __future__ import annotations

import torch
from torch import nn


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean over images of (||grad_x D(x_hat)||_2 - 1)^2 at x_hat = a x + (1 - a) G(z), a ~ U(0, 1) per image.

    The graph is kept (``create_graph``): the penalty's gradient reaches the critic's weights."""
    alpha = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        gradient, = torch.autograd.grad(critic(interpolates).sum(), interpolates, create_graph=True)
    return (gradient.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)]: the critic minimises it (without the gradient penalty)."""
    return fake_scores.mean() - real_scores.mean()


def izif_residuals(images: torch.Tensor, reconstruction: torch.Tensor, image_features: torch.Tensor,
                   reconstruction_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image (B,): ||x - G(E(x))||^2 / n_pixels and ||f(x) - f(G(E(x)))||^2 / n_features (n_pixels counts
    every channel's values)."""
    pixel = (images - reconstruction).pow(2).flatten(1).mean(1)
    feature = (image_features - reconstruction_features).pow(2).flatten(1).mean(1)
    return pixel, feature
