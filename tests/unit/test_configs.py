"""Every experiment setting under configs/ loads as a run configuration and resolves against the registry."""
import pytest

from attn_ocgan.config import load_config_file, run_config_from_dict
from attn_ocgan.registry import resolve_model_config
from tests.conftest import REPO

SWEEPS = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))  # sweep files (attn-ocgan sweep), not run configurations
CONFIGS = sorted(set((REPO / "configs").rglob("*.yaml")) - set(SWEEPS))


def test_there_are_configs():
    assert CONFIGS, "configs/ holds no YAML file"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_loads_and_resolves(path):
    config = run_config_from_dict(load_config_file(path), where=str(path))
    channels = 3 if config.data.name in ("cifar10", "folder", "coco32") else 1
    resolved = resolve_model_config(config.model, config.data.name, config.model_args, channels, config.data.size)
    for key, value in config.model_args.items():
        assert getattr(resolved, key) == value, f"{path}: model_args {key} did not reach the model config"


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_files_read_whole(path):
    from attn_ocgan.protocol.sweep import read_sweep

    spec = read_sweep(path)  # keys, distributions, and a model built from the first value of each
    assert spec.search and spec.base.train.select_epoch == "validation"


def test_the_first_recipe_file_and_the_models_former_defaults_are_the_same_recipe():
    # FIRST_RECIPE rebuilds runs saved before the defaults changed; the YAML regenerates their tables
    from attn_ocgan.models.attn_ocgan import FIRST_RECIPE

    from_file = run_config_from_dict(load_config_file(REPO / "configs" / "attention" / "first-recipe.yaml"))
    assert resolve_model_config("attn-ocgan", "cifar10", from_file.model_args, 3, 32) == \
        resolve_model_config("attn-ocgan", "cifar10", FIRST_RECIPE, 3, 32)
    assert resolve_model_config("attn-ocgan", "cifar10", {}, 3, 32) != resolve_model_config("attn-ocgan", "cifar10", FIRST_RECIPE, 3, 32)
