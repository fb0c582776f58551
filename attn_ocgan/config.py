"""Run configuration: dataclasses, one precedence, saved with every run and checkpoint.

Precedence (lowest first): built-in defaults < per-dataset model presets < config file
(YAML) < command-line flags. Unknown keys are errors, so a typo never silently falls
back to a default.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import UserError

DATA_ROOT_ENV = "ATTN_OCGAN_DATA"
DEFAULT_DATA_ROOT = "datasets"


@dataclass
class DataConfig:
    name: str = "mnist5k"
    # The folder that holds the datasets, each in its own sub-folder (data.datasets.dataset_path).
    root: str | None = None  # None: $ATTN_OCGAN_DATA, else datasets/
    # --dataset folder: the image tree, below the data root (or absolute); '' = the data root itself.
    folder: str = ""
    normal_class: int = 0
    size: int = 32  # image side after resizing/padding
    download: bool = False
    # Held-out fraction of the normal training images (used for score statistics,
    # never test labels). 0 keeps every training image for training.
    val_fraction: float = 0.0
    # With a hold-out: this many training images of the other classes join it as the novel half
    # of the validation split that --select-epoch validation uses (never test images).
    val_novel: int = 2000
    # attn-ocgan only: auxiliary negatives from another dataset, 'NAME' or 'NAME:ROOT'
    # ('' = strict one-class: the model makes its own pseudo-anomalies).
    outlier_exposure: str = ""
    # attn-ocgan only, the original authors' setting: K other classes of the same dataset whose
    # *training* images are the guide's negatives (0 = strict one-class). Which K is drawn with
    # known_anomaly_seed and the normal class (not the training seed: a grid's seeds share them).
    known_anomalies: int = 0
    known_anomaly_seed: int = 0
    # coco32 only: which crops, 'unmasked' or 'masked' (background set to 0).
    variant: str = "unmasked"


@dataclass
class TrainConfig:
    epochs: int = 25
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    threads: int = 0  # 0: torch's default
    device: str = "auto"  # auto (cuda when available, else cpu), cpu, cuda, cuda:N
    eval_every: int = 1  # test AUC to TensorBoard every N epochs and at the last (0: never; evaluation follows training)
    # Which epoch's model is the result: "last", or "validation" (the epoch with the best AUC on the
    # validation split drawn from the training images, as the official OCGAN code selected).
    select_epoch: str = "last"


@dataclass
class RunConfig:
    model: str = "attn-ocgan"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Model hyper-parameters, validated against the registered model's config class.
    model_args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_data_root(root: str | None) -> Path:
    """The one data-root rule of every command: --data-root, else $ATTN_OCGAN_DATA, else datasets/.
    Each dataset lives in its own sub-folder below it (``attn_ocgan.data.datasets.dataset_path``)."""
    return Path(root or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT)


def update_dataclass(obj, values: Mapping[str, Any], where: str):
    """Return a copy of dataclass ``obj`` with ``values`` applied; unknown keys raise UserError."""
    known = {f.name: f for f in fields(obj)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(
            f"unknown key(s) {', '.join(unknown)} in {where}; known keys: {', '.join(sorted(known))}"
        )
    return dataclasses.replace(obj, **values)


def run_config_from_dict(values: Mapping[str, Any], base: RunConfig | None = None, where: str = "config") -> RunConfig:
    """Apply a nested mapping ``{model, data: {...}, train: {...}, model_args: {...}}`` over ``base``."""
    config = base or RunConfig()
    values = dict(values)
    unknown = sorted(set(values) - {"model", "data", "train", "model_args"})
    if unknown:
        raise UserError(
            f"unknown section(s) {', '.join(unknown)} in {where}; known: model, data, train, model_args"
        )
    if "model" in values:
        config = dataclasses.replace(config, model=str(values["model"]))
    if "data" in values:
        config = dataclasses.replace(config, data=update_dataclass(config.data, values["data"] or {}, f"{where} [data]"))
    if "train" in values:
        config = dataclasses.replace(config, train=update_dataclass(config.train, values["train"] or {}, f"{where} [train]"))
    if "model_args" in values:
        config = dataclasses.replace(config, model_args={**config.model_args, **(values["model_args"] or {})})
    return config


def load_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "parse error"
        raise UserError(f"config file {path} is not valid YAML ({first_line}); fix the file") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping with sections model/data/train/model_args")
    return values


def save_config(config: RunConfig, path: Path) -> None:
    from .utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
