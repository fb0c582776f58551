"""A rotation classifier as a novelty detector: the attention model's guide, alone."""
from __future__ import annotations

import torch
from torch import nn

from ...layers import init_dcgan_weights
from ..base import NoveltyModel, Panel
from ..components import ConvCritic
from ..components.rotations import ROTATIONS, UprightEvidence, quarter_turn, rotation_nll
from .config import RotNetConfig


class RotNet(NoveltyModel):
    """A ``ConvCritic`` with four logits, one per quarter turn, trained on normal images only.
    Score: its negative log-likelihood of the true turn, averaged over the four turns of an image."""

    score_name = "rotation NLL (mean over the four quarter turns)"

    def __init__(self, config: RotNetConfig):
        super().__init__()
        self.config = config
        self.classifier = ConvCritic(config.in_channels, config.width, config.image_size, outputs=ROTATIONS)
        init_dcgan_weights(self)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        return rotation_nll(self.classifier, images)

    @torch.no_grad()
    def rotation_panel(self, images: torch.Tensor) -> Panel:
        """Each image in its four quarter turns, labelled with the probability the classifier gives the true turn."""
        rows = []
        for turns in range(ROTATIONS):
            turned = quarter_turn(images, turns)
            probability = torch.softmax(self.classifier(turned), dim=1)[:, turns].mean().item()
            rows.append((f"{90 * turns} deg (p {probability:.2f})", turned))
        return rows

    def figure_panels(self, images: torch.Tensor) -> dict[str, Panel]:
        return {"rotations": self.rotation_panel(images)} if images.shape[2] == images.shape[3] else {}

    def gradcam_heads(self) -> dict[str, nn.Module]:
        return {"upright": UprightEvidence(self.classifier)}
