"""Figures that compare trained models of one normal class, as the comparison literature shows them:
each model's score distributions (train normal / test normal / test novel) and its residual images
|x - reconstruction| of normal vs novel test images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import dataset_label
from ..errors import UserError
from ..engine.evaluation import auc, compute_scores
from ..models.base import NoveltyModel
from .loading import LoadedCheckpoint, data_for, load_checkpoints, pick_test_images


@torch.no_grad()
def residual_rows(model, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Labelled rows (B, C, H, W): input, the model's reconstruction, |x - reconstruction| (in [0, 2]).

    Each model's ``reconstruct``: AnoGAN's is G(z*) after its latent search; attention OCGAN's is its
    first GAN's."""
    model.eval()
    reconstruction = model.reconstruct(images)
    if reconstruction is None:
        raise _no_reconstruction(model)
    return [("input", images), ("reconstruction", reconstruction), ("residual", (images - reconstruction).abs())]


def _no_reconstruction(model) -> UserError:
    return UserError(f"{type(model).__name__} has no reconstruction to draw residuals of; leave its checkpoint out "
                     "of figures ('attn-ocgan evaluate' draws its score histogram)")


def seeded_subset(images: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    """All images, or a seeded random choice of ``limit`` of them (same choice for every model)."""
    if limit is None or len(images) <= limit:
        return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:limit]]


def score_groups(model, data, limit: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Novelty scores of the normal training images and of the normal / novel test images
    (each group at most ``limit`` images, a seeded choice)."""
    test_normal, test_novel = data.test[data.test_is_novel == 0], data.test[data.test_is_novel == 1]
    return {name: compute_scores(model, seeded_subset(images, limit, seed))
            for name, images in (("train normal", data.train), ("test normal", test_normal), ("test novel", test_novel))}


def residual_tiles(checkpoints: list[LoadedCheckpoint], images: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """Columns input, then reconstruction and residual per model; tiles (B, columns, 3, H, W) in [0, 1].
    Residuals of all models share one scale (the 99th percentile of all of them), so they compare."""
    columns, reconstructions, residuals = ["input"], [], []
    for checkpoint in checkpoints:
        (_, _), (_, reconstruction), (_, residual) = residual_rows(checkpoint.model, images.to(_device(checkpoint)))
        reconstructions.append(reconstruction.cpu())
        residuals.append(residual.cpu().mean(1, keepdim=True))
        model_name = checkpoint.label.split("\n")[0]
        columns += [f"recon.\n{model_name}", f"|x - recon.|\n{model_name}"]
    scale = torch.quantile(torch.cat(residuals).flatten(), 0.99).clamp_min(1e-6)
    to_rgb = lambda x: x.expand(-1, 3, -1, -1)  # noqa: E731
    tiles = [to_rgb((images + 1) / 2)]
    for reconstruction, residual in zip(reconstructions, residuals):
        tiles += [to_rgb((reconstruction + 1) / 2), to_rgb(residual / scale)]
    return columns, torch.stack(tiles, dim=1).clamp(0, 1)


def _device(checkpoint: LoadedCheckpoint) -> torch.device:
    return next(checkpoint.model.parameters()).device


def run_model_figures(checkpoint_paths, out_prefix: Path, n: int = 8, limit: int | None = 2000, seed: int = 0,
                      dataset=None, data_root=None, normal_class=None, device: str = "cpu", folder=None) -> dict[str, Path]:
    """``<prefix>_scores.png`` (one score-distribution panel per checkpoint, with its AUC on the scored
    test images) and ``<prefix>_residuals.png`` (``n`` normal and ``n`` novel test images)."""
    from ..viz.plots import save_image_table, save_score_histograms

    if n < 1 or (limit is not None and limit < 1):
        raise UserError("--n and --limit must be >= 1")
    checkpoints = load_checkpoints(checkpoint_paths, device)
    for checkpoint in checkpoints:  # refused before any scoring (AnoGAN's takes minutes)
        if type(checkpoint.model).reconstruct is NoveltyModel.reconstruct:
            raise _no_reconstruction(checkpoint.model)
    data_config, data = data_for(checkpoints, dataset, data_root, normal_class, folder=folder)
    where = data_config.name if data_config.name != "folder" else f"folder ({dataset_label('folder', data_config.root, data_config.folder)})"
    title = f"{where}, normal class {data.normal_class} ({data.class_names[data.normal_class]})"
    panels, score_names = {}, {}
    for checkpoint in checkpoints:
        groups = score_groups(checkpoint.model, data, limit, seed)
        value = auc(np.r_[np.zeros(len(groups["test normal"])), np.ones(len(groups["test novel"]))],
                    np.r_[groups["test normal"], groups["test novel"]])
        name = f"{checkpoint.label}\ntest AUC {value:.4f}"
        panels[name], score_names[name] = groups, checkpoint.model.score_name
    residual_panels = {f"{group} test images": residual_tiles(checkpoints, images)  # before any file is written
                       for group, images in pick_test_images(data, n, seed).items()}
    paths = {"scores": Path(f"{out_prefix}_scores.png"), "residuals": Path(f"{out_prefix}_residuals.png")}
    subset = "" if limit is None else f"; at most {limit} images per group, a seeded choice"
    save_score_histograms(paths["scores"], panels, f"{title}: score distributions{subset}", score_names)
    save_image_table(paths["residuals"], residual_panels, f"{title}: reconstructions and residuals (one shared scale)")
    return paths
