"""What every model and every training recipe shares.

``NoveltyModel``: the scoring interface the engine uses, with optional capabilities whose
defaults are neutral (no components, no attention maps, no extra figures), so that evaluation,
the trainer, the studies and the CLI never test for a particular model.
``Algorithm``: named Adam optimisers, one optimiser step, epoch hooks, checkpoint state.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig

Panel = list[tuple[str, torch.Tensor]]  # labelled rows of images (B, C, H, W) in [-1, 1]


class NoveltyModel(nn.Module):
    """Base of every registered model. Subclasses implement ``score``; the rest is optional."""

    config: object  # the model's config dataclass, saved in every checkpoint
    score_name: str = "novelty score"  # what ``score`` measures, for axis labels
    # Evaluation computes the train-normal statistics on at most this many (seeded) training
    # images; None: all. For models whose scores are expensive (AnoGAN's latent search).
    train_statistics_images: int | None = None
    exportable: bool = True  # ``score``/``reconstruct`` are a fixed forward pass a trace can record (engine/export.py)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Novelty score (B,) of images (B, C, H, W) in [-1, 1]; higher = more novel."""
        raise NotImplementedError

    # -- optional capabilities -----------------------------------------------------
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor | None:
        """The model's reconstruction of ``images`` (B, C, H, W), or None if it has none."""
        return None

    @property
    def score_component_names(self) -> tuple[str, ...]:
        """Names of the raw errors ``score`` combines (``()``: the score is one number)."""
        return ()

    def score_components(self, images: torch.Tensor) -> torch.Tensor:
        """(B, K) raw errors named ``score_component_names`` (only where there are any)."""
        raise NotImplementedError(f"{type(self).__name__} has no score components")

    @property
    def score_component_weights(self) -> dict[str, float]:
        """Weights of the components in the score, by name (a linear combination; of z-normalised
        components where ``score_components_normalised``, else of the raw ones)."""
        return {}

    # Whether ``combine_score_components`` z-normalises the components with normal-training-image
    # statistics before weighting them (evaluation's complexity diagnostic then recombines the calibrated
    # components the same way); False: the score is a fixed weighted sum of the raw components (the
    # diagnostic calibrates that sum itself, and no report re-weights it).
    score_components_normalised: bool = True

    def combine_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, K) ``score_components`` -> (B,) the score, exactly as ``score`` combines them."""
        raise NotImplementedError(f"{type(self).__name__} has no score components")

    @property
    def chooses_score_weights_on_validation(self) -> bool:
        """Whether the trainer sets the components' weights from the validation split after each
        epoch (``normalise_score_components`` and ``set_score_component_weights`` then exist)."""
        return False

    @property
    def score_weight_pseudo_anomalies(self) -> str | None:
        """The pseudo-anomaly kind (``data.pseudo_anomalies.PSEUDO_ANOMALIES``) on which the trainer
        chooses the components' weights after each epoch, from normal images alone; None: it does not."""
        return None

    def normalise_score_components(self, components: torch.Tensor) -> torch.Tensor:
        """(B, K) raw components -> (B, K) as ``combine_score_components`` weights them (a linear score)."""
        raise NotImplementedError(f"{type(self).__name__} has no score components")

    def set_score_component_weights(self, weights: dict[str, float]) -> None:
        raise NotImplementedError(f"{type(self).__name__} has fixed score weights")

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Codes (B, ...) from the prior of a model that decodes random codes (the trainer shows the
        decodes of fixed ones in TensorBoard), on its device; None for a model that decodes none."""
        return None

    def attention_maps(self, images: torch.Tensor) -> torch.Tensor | None:
        """Masks (B, 1, H, W) in (0, 1), or None for a model without attention."""
        return None

    def figure_panels(self, images: torch.Tensor) -> dict[str, Panel]:
        """Named panels evaluation draws for normal and novel test images (``<name>.png``)."""
        return {}

    def gradcam_heads(self) -> dict[str, nn.Module]:
        """Single-logit networks Grad-CAM can explain, by name; the first is the default."""
        return {}

    def diagnostics(self) -> dict:
        """Extra entries for metrics.json (e.g. how the score's components are combined)."""
        return {}


def draw_latent(model: nn.Module, shape: tuple[int, ...], batch_size: int, distribution: str,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, *shape) latent codes on ``model``'s device, ``distribution`` "normal" (N(0, I)) or
    "uniform" (U(-1, 1)). A ``generator`` (on the CPU) makes the draw the same on every device."""
    device = next(model.parameters()).device
    draw = {"normal": torch.randn, "uniform": torch.rand}[distribution]
    if generator is not None:
        codes = draw((batch_size, *shape), generator=generator).to(device)
    else:
        codes = draw((batch_size, *shape), device=device)
    return codes * 2 - 1 if distribution == "uniform" else codes


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

    def image_grids(self, images: torch.Tensor, latent: torch.Tensor | None, test_normal: torch.Tensor | None = None,
                    test_novel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Image grids for TensorBoard (tag -> images (N, C, H, W) in [-1, 1]); none by default.
        ``latent``: fixed codes from the model's ``sample_latent`` (None where it has none)."""
        return {}

    # The options under which ``uses_outlier_images`` holds, for error messages ("": never)
    outlier_images_setting: str = ""

    @classmethod
    def uses_outlier_images(cls, config) -> bool:
        """Whether this recipe, built with model ``config``, takes auxiliary negatives
        (``--outlier-exposure``, ``--known-anomalies``) through ``set_outlier_images``. None by default."""
        return False

    def set_outlier_images(self, images: torch.Tensor) -> None:
        raise NotImplementedError(f"{type(self).__name__} takes no outlier images")

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
