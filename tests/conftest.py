import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from attn_ocgan.config import RunConfig, DataConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]

# Tiny versions of every registered model (a new model must add itself here: the
# parametrized model and checkpoint tests fail on a missing entry).
SMALL_MODEL_ARGS = {
    "ocgan": {"latent_channels": 6, "generator_width": 8},
    # mask_warmup_epochs=0: the masked GAN trains in the first step, so the combined score is used
    # cbam_reduction=2: at width 8 the default reduction leaves one hidden unit, which a ReLU can kill
    "attn-ocgan": {"latent_channels": 6, "generator_width": 8, "guide_width": 8, "mask_warmup_epochs": 0,
                   "cbam_reduction": 2},
    "ganomaly": {"latent_dim": 6, "generator_width": 8, "discriminator_width": 8},
    "anogan": {"latent_dim": 6, "generator_width": 8, "discriminator_width": 8, "search_steps": 5},
}


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def shared_data_root() -> Path | None:
    """../shared/data (or $ATTN_OCGAN_SHARED_DATA) when present: real datasets for optional tests."""
    candidates = [os.environ.get("ATTN_OCGAN_SHARED_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield


@pytest.fixture
def tiny_config():
    """mnist5k, 1 epoch, small batch: a few seconds of CPU."""
    return RunConfig(
        model="ocgan",
        data=DataConfig(name="mnist5k", normal_class=1),
        train=TrainConfig(epochs=1, batch_size=64, seed=0),
    )
