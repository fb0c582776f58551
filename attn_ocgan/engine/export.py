"""Export a checkpoint to a self-contained scorer: TorchScript or ONNX, no attn-ocgan needed to run it.

The exported module takes uint8 images (B, C, H, W) of the trained size, maps them to [-1, 1] as the
data loaders do (``to_unit_range``) and returns ``scores`` (B,), exactly ``model.score``, and
``residual`` (B, 1, H, W), the squared error |x - reconstruct(x)|^2 averaged over channels; a model
without a reconstruction (``reconstruct`` returns None, e.g. rotnet) exports ``scores`` alone. The model
is traced once in eval mode (weights and buffers such as the score statistics become constants) and
the trace is checked against the model at another batch size before anything is written.
A ``<out>.json`` sidecar describes the input and outputs.
"""
from __future__ import annotations

import contextlib
import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from ..data.one_class import to_unit_range
from ..errors import UserError
from ..utils.io import atomic_path, atomic_write_json
from .checkpoint import model_from_checkpoint, read_checkpoint
from .device import model_device, resolve_device

FORMATS = ("torchscript", "onnx")
INPUT_NAME, OUTPUT_NAMES = "images", ("scores", "residual")
ONNX_OPSET = 18


class Scorer(nn.Module):
    """uint8 images (B, C, H, W) -> (scores (B,), residual (B, 1, H, W)), or (scores,) when
    ``with_residual`` is False (a model without a reconstruction); wraps a model in eval mode."""

    def __init__(self, model: nn.Module, with_residual: bool = True):
        super().__init__()
        self.model, self.with_residual = model.eval(), with_residual

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _outputs(self.model, to_unit_range(images), self.with_residual)


def _outputs(model: nn.Module, x: torch.Tensor, with_residual: bool) -> tuple[torch.Tensor, ...]:
    """The exported outputs of images ``x`` in [-1, 1], computed by the model itself."""
    if not with_residual:
        return (model.score(x),)
    return model.score(x), (x - model.reconstruct(x)).pow(2).mean(1, keepdim=True)


def export_model(checkpoint: Path | dict, out: Path, fmt: str, device: str = "cpu") -> Path:
    """Write the checkpoint's scorer to ``out`` (and ``<out>.json``) in ``fmt``; returns ``out``.
    ``checkpoint`` is a checkpoint file or what ``read_checkpoint`` returned for one.

    A TorchScript file keeps its weights on ``device`` (``torch.jit.load(map_location=...)`` moves
    them); an ONNX file runs wherever its runtime does."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "onnx" and importlib.util.find_spec("onnx") is None:  # torch.onnx.export writes through it
        raise UserError("ONNX export needs the 'onnx' package: pip install onnx (or export to torchscript)")
    out = Path(out)
    payload = checkpoint if isinstance(checkpoint, dict) else read_checkpoint(checkpoint)
    config, model = model_from_checkpoint(payload, resolve_device(device))
    if not model.exportable:
        raise UserError(f"model '{config.model}' cannot be exported: its score is not a fixed forward pass a trace can "
                        "record (e.g. a per-image latent search with gradients); score its checkpoint with 'attn-ocgan evaluate' instead")
    channels, size = model.config.in_channels, model.config.image_size
    where = model_device(model)

    def images(batch: int, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (batch, channels, size, size), generator=generator, dtype=torch.uint8).to(where)

    example = images(2, 0)
    with torch.no_grad():
        with_residual = model.reconstruct(to_unit_range(example)) is not None
        traced = _trace(Scorer(model, with_residual), example)
        _check_trace(traced, model, images(3, 1), config.model, with_residual)
    names = OUTPUT_NAMES if with_residual else OUTPUT_NAMES[:1]

    with atomic_path(out) as temporary, _quiet():
        if fmt == "torchscript":
            torch.jit.save(traced, str(temporary))
        else:
            _export_onnx(traced, example, temporary, names)
    atomic_write_json(f"{out}.json", {
        "format": fmt, "file": out.name, "model": config.model, "epoch": payload["epoch"],
        "dataset": config.data.name, "normal_class": config.data.normal_class, "score_name": model.score_name,
        "input": {"name": INPUT_NAME, "shape": ["batch", channels, size, size], "dtype": "uint8", "range": [0, 255]},
        "outputs": {name: {"shape": shape, "dtype": "float32"}
                    for name, shape in zip(names, (["batch"], ["batch", 1, size, size]))},
    })
    return out


@contextlib.contextmanager
def _quiet():
    """Silence the tracer and exporters: Python-side branches (e.g. whether a second GAN has trained)
    are fixed at export on purpose and ``_check_trace`` tests the result; torch >= 2.9 also marks
    torch.jit and the TorchScript ONNX exporter deprecated, which changes nothing for the files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "no signature found", UserWarning)  # ONNX export of a traced module
        yield


def _trace(scorer: Scorer, example: torch.Tensor) -> torch.jit.ScriptModule:
    with _quiet():
        return torch.jit.trace(scorer, example, check_trace=False)


def _check_trace(traced, model, images: torch.Tensor, name: str, with_residual: bool) -> None:
    """The trace at another batch size must give the model's own scores and residuals (a trace that
    fixed the batch size, or a branch that depends on the data, would not)."""
    expected = _outputs(model, to_unit_range(images), with_residual)
    try:
        got = traced(images)
        same = len(got) == len(expected) and all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(got, expected))
    except RuntimeError:
        same = False
    if not same:
        raise UserError(f"model '{name}' cannot be exported: its traced score differs from the model's at another batch size; "
                        "score its checkpoint with 'attn-ocgan evaluate' instead")


def _export_onnx(traced, example: torch.Tensor, path: Path, names: tuple[str, ...]) -> None:
    """The checked trace to ONNX with a dynamic batch axis (the TorchScript exporter: the trace is
    already a fixed graph, and the dynamo exporter needs onnxscript)."""
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)}
    torch.onnx.export(traced, (example,), str(path), input_names=[INPUT_NAME], output_names=list(names),
                      dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False, external_data=False)


__all__ = ["FORMATS", "Scorer", "export_model"]
