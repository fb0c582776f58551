import os
from pathlib import Path

# Every Ray server a test starts listens on 127.0.0.1 only (Ray reads this when it is imported;
# on Linux it would otherwise take the machine's outward address). No usage reports.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest
import torch

from attn_ocgan.config import RunConfig, DataConfig, TrainConfig
from attn_ocgan.registry import create_algorithm, create_model, get_spec, known_models, resolve_model_config

REPO = Path(__file__).resolve().parents[1]

# Tiny versions of every registered model: each model folder declares its own (``test_args``).
SMALL_MODEL_ARGS = {name: get_spec(name).test_args for name in known_models()}


def shared_data_root() -> Path | None:
    """../shared/data (or $ATTN_OCGAN_SHARED_DATA) when present: real datasets for optional tests."""
    candidates = [os.environ.get("ATTN_OCGAN_SHARED_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def untrained_checkpoint(name: str, path: Path) -> Path:
    """A checkpoint of an untrained tiny ``name`` on mnist5k: enough for the checks a command makes
    before it scores anything (no training time)."""
    import dataclasses

    from attn_ocgan.engine.checkpoint import save_checkpoint

    model_config = resolve_model_config(name, "mnist5k", SMALL_MODEL_ARGS[name], 1, 32)
    config = RunConfig(model=name, data=DataConfig(name="mnist5k"), model_args=dataclasses.asdict(model_config))
    model = create_model(name, model_config)
    save_checkpoint(path, config, model, create_algorithm(name, model, model_config, config.train), epoch=1)
    return path


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
