"""Checkpoints and their data for the studies: each checkpoint rebuilt from the file alone on the
chosen device, labelled for figures, with the first checkpoint's dataset (with overrides)."""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import torch

from ..data import load_one_class
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import resolve_device
from ..errors import UserError


@dataclasses.dataclass
class LoadedCheckpoint:
    label: str  # figure columns: model, then the run folder (wrapped) unless it is named like the model
    config: object  # RunConfig
    model: torch.nn.Module
    path: str


def run_name(path) -> str:
    """The run folder's name of a checkpoint ``path`` (RUN/checkpoints/x.pt)."""
    return Path(path).resolve().parent.parent.name


def checkpoint_label(model_name: str, path, wrap: int | None = 22) -> str:
    """'model' over the run folder of ``path``, wrapped at ``wrap`` characters (None: one line,
    'model (run)'); the model name alone when the run folder is named after the model."""
    run = run_name(path)
    if run == model_name:
        return model_name
    if wrap is None:
        return f"{model_name} ({run})"
    return "\n".join([model_name, *textwrap.wrap(run, wrap, break_on_hyphens=True)])


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
