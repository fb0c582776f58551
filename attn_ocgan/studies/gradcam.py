"""Compare checkpoints visually: Grad-CAM of each and the attention masks, normal vs novel images."""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import torch

from ..data import dataset_label, load_one_class
from ..errors import UserError
from ..viz.gradcam import gradcam_maps, overlay
from ..viz.plots import save_image_table
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import model_device, resolve_device


@dataclasses.dataclass
class LoadedCheckpoint:
    label: str  # figure columns: model, then the run folder (wrapped) unless it is named like the model
    config: object  # RunConfig
    model: torch.nn.Module
    path: str


def checkpoint_label(model_name: str, path) -> str:
    """'model' over the run folder of ``path`` (RUN/checkpoints/x.pt), wrapped at 22 characters;
    the model name alone when the run folder is named after the model."""
    run_name = Path(path).resolve().parent.parent.name
    if run_name == model_name:
        return model_name
    return "\n".join([model_name, *textwrap.wrap(run_name, 22, break_on_hyphens=True)])


def load_checkpoints(paths, device: str | torch.device = "cpu") -> list[LoadedCheckpoint]:
    """Each checkpoint rebuilt from the file alone on ``device`` (--device), labelled ``checkpoint_label``."""
    device = resolve_device(device)
    loaded = []
    for path in paths:
        config, model = model_from_checkpoint(read_checkpoint(path), device)
        loaded.append(LoadedCheckpoint(checkpoint_label(config.model, path), config, model.eval(), str(path)))
    if not loaded:
        raise UserError("pass at least one --checkpoint")
    return loaded


def data_for(checkpoints: list[LoadedCheckpoint], dataset=None, data_root=None, normal_class=None, variant=None,
             folder=None):
    """The first checkpoint's data settings with the given overrides; checks every model fits it."""
    overrides = {k: v for k, v in dict(name=dataset, root=data_root, normal_class=normal_class,
                                        variant=variant, folder=folder).items() if v is not None}
    data_config = dataclasses.replace(checkpoints[0].config.data, **overrides)
    data = load_one_class(data_config)
    for checkpoint in checkpoints:
        model_config = checkpoint.model.config
        if (model_config.in_channels, model_config.image_size) != (data.in_channels, data.image_size):
            raise UserError(f"{checkpoint.path} expects {model_config.in_channels}x{model_config.image_size}px images but "
                            f"{data_config.name} has {data.in_channels}x{data.image_size}px; pass a matching --dataset")
    return data_config, data


def pick_test_images(data, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` normal and ``n`` novel test images, a seeded random choice."""
    generator = torch.Generator().manual_seed(seed)
    picked = {}
    for name, flag in (("normal", 0), ("novel", 1)):
        index = torch.nonzero(data.test_is_novel == flag).flatten()
        if len(index) == 0:
            raise UserError(f"the test split has no {name} images for normal class {data.normal_class}")
        picked[name] = data.test[index[torch.randperm(len(index), generator=generator)[:n]]]
    return picked


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
