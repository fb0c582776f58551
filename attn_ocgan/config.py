"""Run configuration: dataclasses, one precedence, saved with every run and checkpoint.

Precedence (lowest first): built-in defaults < per-dataset model presets < config file
(YAML) < command-line flags. Unknown keys are errors, so a typo never silently falls
back to a default.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
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
    normal_class: int | str = 0  # an index, or a class (folder) name such as 'good'
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

    def __post_init__(self):
        _check_bounds(self, "data", {"size": (8, None), "val_novel": (0, None), "known_anomalies": (0, None),
                                     "known_anomaly_seed": (0, None)})
        if isinstance(self.normal_class, int) and self.normal_class < 0:
            raise UserError(f"data option normal_class={self.normal_class} must be >= 0; change --normal-class")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"data option val_fraction={self.val_fraction} must be in [0, 1); change --val-fraction")


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

    def __post_init__(self):
        _check_bounds(self, "train", {"epochs": (1, None), "batch_size": (2, None), "seed": (0, None),
                                      "threads": (0, None), "eval_every": (0, None)})
        if not self.lr > 0:
            raise UserError(f"train option lr={self.lr} must be > 0 (e.g. 2e-4); change --lr")
        if not 0.0 <= self.beta1 < 1.0:
            raise UserError(f"train option beta1={self.beta1} must be in [0, 1); change beta1 in the config's train section")


def _check_bounds(config, section: str, bounds: dict[str, tuple]) -> None:
    """One-line UserError for an option of ``config`` outside its [low, high] (None: unbounded)."""
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        if (low is not None and value < low) or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{section} option {name}={value} must be {bound}; change {flag} (or {name} in the config's "
                            f"{section} section)")


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


TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _typed(value, hint):
    """``value`` as the annotated type ``hint`` (an int is a float; a YAML string such as '1e-4' is
    a number), or raise TypeError. Hints this check does not know (tuples, dicts) pass as they are."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                try:
                    return _typed(value, option)
                except TypeError:
                    pass
        raise TypeError
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise TypeError from None
        raise TypeError
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError
    return value


def update_dataclass(obj, values: Mapping[str, Any], where: str):
    """Return a copy of dataclass ``obj`` with ``values`` applied; unknown keys and values of the
    wrong type (``latent_channels: abc``, ``epochs: 2.5``) raise a one-line UserError."""
    if not isinstance(values, Mapping):
        raise UserError(f"{where} must be a mapping of key: value, got {type(values).__name__} {values!r}; fix the config")
    known = {f.name: f for f in fields(obj)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(
            f"unknown key(s) {', '.join(unknown)} in {where}; known keys: {', '.join(sorted(known))}"
        )
    hints = typing.get_type_hints(type(obj))
    typed = {}
    for name, value in values.items():
        try:
            typed[name] = _typed(value, hints[name])
        except TypeError:
            expected = TYPE_NAMES.get(hints[name], str(hints[name]).replace("NoneType", "None"))
            raise UserError(f"{name}={value!r} in {where} must be {expected}; fix its value") from None
    return dataclasses.replace(obj, **typed)


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
        if not isinstance(values["model"], str):
            raise UserError(f"model: {values['model']!r} in {where} must be a model name (e.g. ocgan, attn-ocgan); fix the config")
        config = dataclasses.replace(config, model=values["model"])
    if "data" in values:
        config = dataclasses.replace(config, data=update_dataclass(config.data, values["data"] or {}, f"{where} [data]"))
    if "train" in values:
        config = dataclasses.replace(config, train=update_dataclass(config.train, values["train"] or {}, f"{where} [train]"))
    if "model_args" in values:
        model_args = values["model_args"] or {}
        if not isinstance(model_args, Mapping):
            raise UserError(f"{where} [model_args] must be a mapping of key: value, got {model_args!r}; fix the config")
        config = dataclasses.replace(config, model_args={**config.model_args, **model_args})
    return config


def load_config_file(path: str | Path, sections: str = "model/data/train/model_args") -> dict:
    """A YAML mapping read from ``path`` (``sections``: its keys, named in the error when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else "parse error"
        raise UserError(f"config file {path} is not valid YAML ({first_line}); fix the file") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not a text file; pass a YAML file to --config") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping with sections {sections}")
    return values


def save_config(config: RunConfig, path: Path) -> None:
    from .utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
