"""Quarter-turn rotations as a self-supervised task (Gidaris et al. 2018; as novelty evidence:
Golan & El-Yaniv 2018, Hendrycks et al. 2019): a classifier trained on normal images to tell which
of four 90-degree rotations was applied recognises the orientation of normal images and not of
others. Used by the attention model's rotation guide and by ``rotnet``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROTATIONS = 4  # quarter turns 0, 90, 180, 270 degrees


def quarter_turn(images: torch.Tensor, turns: int) -> torch.Tensor:
    """``torch.rot90(images, turns, dims=(2, 3))`` written with flips and a transpose, which every
    exporter knows (ONNX has no rot90). (B, C, H, W) -> (B, C, W, H)."""
    turns %= ROTATIONS
    if turns == 1:
        return images.transpose(2, 3).flip(2)
    if turns == 2:
        return images.flip(2).flip(3)
    if turns == 3:
        return images.transpose(2, 3).flip(3)
    return images


def rotate(images: torch.Tensor, quarter_turns: torch.Tensor) -> torch.Tensor:
    """Each image (B, C, H, W) turned counter-clockwise by ``quarter_turns`` (B,) x 90 degrees."""
    out = torch.empty_like(images)
    for k in range(ROTATIONS):
        chosen = quarter_turns == k
        if chosen.any():
            out[chosen] = torch.rot90(images[chosen], k, dims=(2, 3))
    return out


def random_rotations(images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rotated images, their quarter-turn labels (B,) in 0..3), labels drawn uniformly."""
    labels = torch.randint(ROTATIONS, (len(images),), generator=generator).to(images.device)
    return rotate(images, labels), labels


def rotation_nll(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B,): the rotation classifier's negative log-likelihood of the true quarter turn, averaged
    over the four turns of each image (Hendrycks et al. 2019's score). Call in eval mode."""
    total = torch.zeros_like(images[:, 0, 0, 0])  # (B,), shaped from the input: exports trace it per batch
    for turns in range(ROTATIONS):
        logits = classifier(quarter_turn(images, turns))
        labels = torch.full_like(images[:, 0, 0, 0], turns, dtype=torch.long)
        total = total + F.cross_entropy(logits, labels, reduction="none")
    return total / ROTATIONS


class UprightEvidence(nn.Module):
    """A rotation classifier as one logit per image for Grad-CAM: the log-probability it gives to
    "not rotated". ``features`` is the classifier's, so Grad-CAM targets the same layer."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.guide = classifier
        self.features = classifier.features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.guide(images), dim=1)[:, 0]
