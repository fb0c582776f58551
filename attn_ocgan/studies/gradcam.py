"""Compare checkpoints visually: Grad-CAM of each and the attention masks, normal vs novel images."""
from __future__ import annotations

from pathlib import Path

import torch

from ..data import dataset_label
from ..engine.device import model_device
from ..errors import UserError
from ..viz.gradcam import gradcam_maps, overlay
from ..viz.plots import save_image_table
from .loading import LoadedCheckpoint, data_for, load_checkpoints, pick_test_images


def explanation_columns(checkpoints: list[LoadedCheckpoint], images: torch.Tensor, head: str, evidence: str):
    """Column names and tiles (B, columns, 3, H, W) in [0, 1]: input, Grad-CAM per checkpoint, masks."""
    rgb = ((images + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
    columns, tiles = ["input"], [rgb]
    for checkpoint in checkpoints:
        maps = gradcam_maps(checkpoint.model, images.to(model_device(checkpoint.model)), head, evidence, where=checkpoint.path)
        columns.append(f"Grad-CAM\n{checkpoint.label}")
        tiles.append(overlay(images, maps))
    for checkpoint in checkpoints:
        with torch.no_grad():
            masks = checkpoint.model.attention_maps(images.to(model_device(checkpoint.model)))
        if masks is not None:
            columns.append(f"mask\n{checkpoint.label}")
            tiles.append(masks.cpu().expand(-1, 3, -1, -1))
    return columns, torch.stack(tiles, dim=1)


def run_gradcam_comparison(checkpoint_paths, out: Path, n: int = 16, head: str | None = None,
                           evidence: str = "normal", dataset=None, data_root=None, normal_class=None, variant=None,
                           logdir: Path | None = None, seed: int = 0, device: str = "cpu", folder=None) -> Path:
    """Write the comparison figure (and a TensorBoard image per group when ``logdir`` is given)."""
    if n < 1:
        raise UserError("--n must be >= 1")
    if logdir is not None:
        Path(logdir).mkdir(parents=True, exist_ok=True)  # a file there fails now, not after the figure is written
    checkpoints = load_checkpoints(checkpoint_paths, device)
    data_config, data = data_for(checkpoints, dataset, data_root, normal_class, variant, folder)
    panels = {}
    for group, images in pick_test_images(data, n, seed).items():
        columns, tiles = explanation_columns(checkpoints, images, head, evidence)
        panels[f"{group} test images"] = (columns, tiles)
    class_name = data.class_names[data.normal_class]
    dataset_name = data_config.name + (f" ({dataset_label('folder', data_config.root, data_config.folder)})" if data_config.name == "folder" else "")
    head_name = head or "each model's default head"
    title = f"{dataset_name}, normal class {data.normal_class} ({class_name}); Grad-CAM on {head_name} ({evidence} evidence)"
    save_image_table(Path(out), panels, title=title)
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter
        from torchvision.utils import make_grid

        with SummaryWriter(str(logdir)) as writer:
            for name, (columns, tiles) in panels.items():
                grid = make_grid(tiles.reshape(-1, *tiles.shape[2:]), nrow=len(columns), pad_value=1.0)
                writer.add_image(f"gradcam/{name.split()[0]}", grid, 0)
            writer.add_text("gradcam/columns", " | ".join(columns), 0)
    return Path(out)
