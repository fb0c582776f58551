"""Rotation-prediction training: exactly the attention model's rotation guide step without masks,
i.e. cross-entropy on each normal image (label 0) and on a copy turned by a random quarter turn."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import TrainConfig
from ..base import Algorithm, adam
from ..components import evaluating
from ..components.rotations import ROTATIONS, quarter_turn, random_rotations
from .config import RotNetConfig
from .torch_model import RotNet


class RotNetAlgorithm(Algorithm):
    progress_loss = "rotation/cross_entropy"

    def __init__(self, model: RotNet, config: RotNetConfig, train: TrainConfig):
        self.model = model
        self.optimizers = {"classifier": adam([model.classifier], train)}

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        self.model.train()
        turned, turns = random_rotations(images)
        logits = self.model.classifier(torch.cat([images, turned]))
        labels = torch.cat([torch.zeros_like(turns), turns])
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        return {"rotation/cross_entropy": self._step("classifier", loss), "rotation/accuracy": accuracy}

    def image_grids(self, images: torch.Tensor, latent: torch.Tensor, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The four quarter turns of the fixed training images, as the classifier sees them."""
        if images.shape[2] != images.shape[3]:
            return {}
        with evaluating(self.model.classifier):
            return {"images/quarter_turns": torch.cat([quarter_turn(images, turns) for turns in range(ROTATIONS)])}
