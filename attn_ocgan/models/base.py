"""What every training recipe shares: named Adam optimisers, one optimiser step, checkpoint state."""
from __future__ import annotations

import torch

from ..config import TrainConfig


def adam(modules, train: TrainConfig) -> torch.optim.Adam:
    parameters = [p for module in modules for p in module.parameters()]
    return torch.optim.Adam(parameters, lr=train.lr, betas=(train.beta1, 0.999))


class Algorithm:
    """Base of the per-model training recipes; subclasses fill ``self.optimizers`` and ``train_step``."""

    optimizers: dict[str, torch.optim.Optimizer]
    # The train_step log the progress bar and the epoch line show (its last path part names it).
    progress_loss: str = "generator/recon"

    def train_step(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def _step(self, name: str, loss: torch.Tensor) -> float:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    # -- epoch hooks (called by the trainer) -------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        """Schedules that change at epoch boundaries (none by default)."""

    def end_epoch(self, train_images: torch.Tensor) -> None:
        """Statistics of the normal training images, e.g. for score normalisation (none by default)."""

    def histograms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])


def test_reconstruction_grids(reconstruct, test_normal=None, test_novel=None) -> dict[str, torch.Tensor]:
    """For fixed normal / novel test images: a row of inputs above a row of ``reconstruct(inputs)``."""
    grids = {}
    for group, batch in (("test_normal", test_normal), ("test_novel", test_novel)):
        if batch is not None and len(batch):
            grids[f"images/{group}_reconstructions"] = torch.cat([batch, reconstruct(batch)])
    return grids
