"""Model registry: ``create_model(name, ...)``; an unknown name lists the known ones."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .config import update_dataclass
from .errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    config_class: type
    model_class: Callable
    algorithm_class: Callable
    dataset_presets: dict[str, dict]


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, spec: ModelSpec) -> None:
    _REGISTRY[name] = spec


def _ensure_builtin_models() -> None:
    if "ocgan" not in _REGISTRY:
        from .models import ocgan

        register_model("ocgan", ModelSpec(ocgan.OCGANConfig, ocgan.OCGAN, ocgan.OCGANAlgorithm, ocgan.DATASET_PRESETS))
    if "attn-ocgan" not in _REGISTRY:
        from .models import attn_ocgan

        register_model("attn-ocgan", ModelSpec(attn_ocgan.AttnOCGANConfig, attn_ocgan.AttnOCGAN,
                                               attn_ocgan.AttnOCGANAlgorithm, attn_ocgan.DATASET_PRESETS))
    if "ganomaly" not in _REGISTRY:
        from .models import ganomaly

        register_model("ganomaly", ModelSpec(ganomaly.GANomalyConfig, ganomaly.GANomaly, ganomaly.GANomalyAlgorithm,
                                             ganomaly.DATASET_PRESETS))
    if "anogan" not in _REGISTRY:
        from .models import anogan

        register_model("anogan", ModelSpec(anogan.AnoGANConfig, anogan.AnoGAN, anogan.AnoGANAlgorithm,
                                           anogan.DATASET_PRESETS))


def known_models() -> list[str]:
    _ensure_builtin_models()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _ensure_builtin_models()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(known_models())}")
    return _REGISTRY[name]


def resolve_model_config(name: str, dataset: str, model_args: dict[str, Any], in_channels: int, image_size: int):
    """Model defaults < dataset preset < user model_args; data-derived shape fields last."""
    spec = get_spec(name)
    config = spec.config_class()
    config = update_dataclass(config, spec.dataset_presets.get(dataset, {}), f"{name} preset for {dataset}")
    config = update_dataclass(config, model_args, "model_args")
    return dataclasses.replace(config, in_channels=in_channels, image_size=image_size)


def create_model(name: str, config):
    """Build a registered model. Its weights use the channels_last memory layout: oneDNN's
    convolutions then run on NHWC tensors, measured 1.2x faster training and scoring on CPU
    (``benchmarks/train_throughput.py`` reports both layouts). Inputs need no conversion."""
    return get_spec(name).model_class(config).to(memory_format=torch.channels_last)


def create_algorithm(name: str, model, config, train_config):
    return get_spec(name).algorithm_class(model, config, train_config)
