"""Grad-CAM (pytorch_grad_cam) on a single-logit head of an OCGAN-family model.

Each model names its single-logit networks (``gradcam_heads``); the first is the default. For
OCGAN it is the **visual discriminator** ``Dv``: of its single-logit networks it is the one
trained on raw images (real normal images vs decodes of random latents), so its logit on a test
image is meaningful; the classifier ``C`` only ever sees decoder outputs. The attention model
adds its ``guide`` (normal vs pseudo-anomalies, masked and unmasked); GANomaly, Skip-GANomaly and
AnoGAN offer their ``discriminator``, f-AnoGAN its WGAN ``critic``. The target is the logit itself (evidence for "normal") or its
negation (``evidence="novel"``). Hooks live inside a ``with`` block and are released after use.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import UserError

class SingleLogit(nn.Module):
    """(B, C, H, W) -> (B, 1): a critic's logit in the shape pytorch_grad_cam's targets expect."""

    def __init__(self, critic: nn.Module):
        super().__init__()
        self.critic = critic

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.critic(images).reshape(len(images), 1)


def target_layer(critic: nn.Module, where: str = "checkpoint") -> nn.Module:
    """The last convolution before the head's final 1-logit layer (a 4x4 map at 32x32 inputs)."""
    features = getattr(critic, "features", critic)
    convolutions = [module for module in features.modules() if isinstance(module, nn.Conv2d)]
    if not convolutions:
        raise UserError(f"{where}: the head has no convolutional layer for Grad-CAM to target; "
                        "choose another --head or a convolutional model")
    return convolutions[-1]


def find_head(model: nn.Module, head: str | None = None, where: str = "checkpoint") -> nn.Module:
    """The model's Grad-CAM head named ``head`` (``gradcam_heads``), or its default (the first) for None."""
    heads = model.gradcam_heads() if hasattr(model, "gradcam_heads") else {}
    if not heads:
        raise UserError(f"{where}: {type(model).__name__} has no single-logit network for Grad-CAM to explain")
    if head is None:
        return next(iter(heads.values()))
    if head not in heads:
        raise UserError(f"{where} has no {head!r} head to explain (available: {', '.join(heads)}); "
                        "pass --head with one of those")
    return heads[head]


def gradcam_maps(model: nn.Module, images: torch.Tensor, head: str | None = None,
                 evidence: str = "normal", where: str = "checkpoint") -> torch.Tensor:
    """Grad-CAM maps (B, 1, H, W) in [0, 1] at the input resolution, each min-max scaled."""
    from pytorch_grad_cam import GradCAM

    if evidence not in ("normal", "novel"):
        raise UserError(f"evidence must be 'normal' or 'novel', not {evidence!r}")
    critic = find_head(model, head, where)
    sign = 1.0 if evidence == "normal" else -1.0
    wrapper = SingleLogit(critic)
    was_training = critic.training
    try:
        with GradCAM(model=wrapper, target_layers=[target_layer(critic, where)]) as cam:
            maps = cam(input_tensor=images.detach().clone(), targets=[lambda output: sign * output[0]] * len(images))
    finally:
        critic.train(was_training)
    return torch.from_numpy(maps).float().unsqueeze(1).clamp_(0.0, 1.0)


def overlay(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Heat-map overlays (B, 3, H, W) in [0, 1] of maps (B, 1, H, W) on images in [-1, 1]."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = ((images.detach().float() + 1) / 2).clamp(0, 1)
    rgb = rgb.expand(-1, 3, -1, -1) if rgb.shape[1] == 1 else rgb
    out = [show_cam_on_image(image.permute(1, 2, 0).numpy(), heat[0].numpy(), use_rgb=True)
           for image, heat in zip(rgb, maps)]
    return torch.stack([torch.from_numpy(array).permute(2, 0, 1) for array in out]).float() / 255
