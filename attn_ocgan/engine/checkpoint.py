"""Checkpoints hold the resolved config, so a model is rebuilt from the file alone.

Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers. Written atomically;
a save first removes the temporaries an interrupted save (kill -9) left in the folder.
"""
from __future__ import annotations

import contextlib
import warnings
import zipfile
from pathlib import Path

import torch

from ..config import RunConfig, run_config_from_dict
from ..errors import UserError
from ..registry import create_model, get_spec, saved_model_args, update_dataclass
from ..utils.io import atomic_path, stale_temporaries

CHECKPOINT_FORMAT = "attn-ocgan-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, config: RunConfig, model, algorithm, epoch: int, extra: dict | None = None) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": config.to_dict(),
        "epoch": epoch,  # number of completed epochs
        "model": model.state_dict(),
        "algorithm": algorithm.state_dict() if algorithm is not None else {},
        "rng": torch.get_rng_state(),
        "extra": extra or {},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # a GPU run: its generators too
        payload["cuda_rng"] = torch.cuda.get_rng_state_all()
    remove_stale_temporaries(Path(path).parent)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def add_to_checkpoint(path: Path, **entries) -> None:
    """Rewrite a checkpoint with extra top-level entries (tensors, plain containers); nothing else changes."""
    payload = read_checkpoint(path)
    payload.update(entries)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the ``.<name>.pt.<random>.tmp`` files an interrupted checkpoint save left in ``folder``
    (only those: nothing else in the folder is touched); returns what was removed."""
    removed = []
    for stale in stale_temporaries(folder, ".pt"):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


REQUIRED_KEYS = ("config", "epoch", "model")


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a .pt file written by 'attn-ocgan train'")
    if _is_exported_scorer(path):
        raise UserError(f"{path} is a scorer written by 'attn-ocgan export', not a checkpoint; pass the checkpoint it "
                        "was exported from (RUN/checkpoints/last.pt), or load the scorer with torch.jit.load / onnxruntime")
    try:
        with warnings.catch_warnings():  # torch's own advice about weights_only would be a second message
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for foreign or corrupt files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read checkpoint {path} (not a file torch.save wrote: {reason[:160]}); "
                        "pass a checkpoint written by 'attn-ocgan train'") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an attn-ocgan checkpoint; pass a file written by 'attn-ocgan train'")
    if payload.get("version", 0) > CHECKPOINT_VERSION:
        raise UserError(f"{path} was written by a newer attn-ocgan (format {payload['version']}); upgrade the package")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise UserError(f"{path} is an incomplete attn-ocgan checkpoint (no {', '.join(missing)}); use the file as "
                        "'attn-ocgan train' wrote it")
    return payload


def _is_exported_scorer(path: Path) -> bool:
    """An ONNX file or a TorchScript archive (a zip holding code/), as ``attn-ocgan export`` writes."""
    if path.suffix == ".onnx":
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def checkpoint_epoch(path: str | Path) -> int | None:
    """The completed epochs a checkpoint holds, read without loading its weights (None: no
    readable checkpoint there)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # missing, foreign or half-written: nothing to report
        return None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        return None
    return int(payload["epoch"])


def unfinished_training(payload: dict) -> str | None:
    """'epoch E of N' for the last checkpoint of a run that has not finished its schedule (stopped, or
    still training), else None. A finished run's checkpoints hold the scores of normal images
    (``thresholds.NORMAL_SCORES``); an epoch chosen on validation (``extra["best"]``) is a finished run's."""
    from .thresholds import NORMAL_SCORES

    planned, done = int(payload["config"]["train"]["epochs"]), int(payload["epoch"])
    if done >= planned or NORMAL_SCORES in payload or "best" in payload.get("extra", {}):
        return None
    return f"epoch {done} of {planned}"


def model_from_checkpoint(payload: dict, device: str | torch.device = "cpu"):
    """Rebuild (config, model) from a checkpoint payload; the model is in eval mode on ``device``."""
    config = run_config_from_dict(payload["config"], where="checkpoint config")
    spec = get_spec(config.model)
    model_config = update_dataclass(spec.config_class(), saved_model_args(config.model, config.model_args),
                                    "checkpoint model_args")
    model = create_model(config.model, model_config)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:  # e.g. a config edited after training: the shapes no longer fit
        first = str(error).strip().splitlines()[-1].strip() if str(error).strip() else "mismatch"
        raise UserError(f"the checkpoint's weights do not fit its own config ({first[:200]}); "
                        "use the checkpoint as 'attn-ocgan train' wrote it") from None
    return config, model.to(device).eval()


def restore_rng(payload: dict) -> None:
    """Restore the random generators saved with a checkpoint: the CPU one always, the CUDA ones
    when the checkpoint came from a GPU run and this process sees as many GPUs (a resume on another
    device then follows a different random stream, as it would anyway)."""
    torch.set_rng_state(payload["rng"])
    cuda_states = payload.get("cuda_rng")
    if cuda_states and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
        torch.cuda.set_rng_state_all(cuda_states)
