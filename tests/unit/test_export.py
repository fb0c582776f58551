"""attn_ocgan/engine/export.py: an exported scorer (TorchScript, ONNX) gives the checkpoint's own scores
and residuals on uint8 images (scores alone for a model without a reconstruction), and models whose
score cannot be traced are refused in one line."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from attn_ocgan.data import load_one_class
from attn_ocgan.data.one_class import to_unit_range
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.engine.export import export_model
from attn_ocgan.engine.trainer import train
from attn_ocgan.errors import UserError
from attn_ocgan.models.attn_ocgan import FIRST_RECIPE
from tests.conftest import SMALL_MODEL_ARGS

EXPORTABLE = ("ocgan", "attn-ocgan", "ganomaly", "skip-ganomaly", "fanogan", "attn-ocgan+first-recipe", "rotnet")
SCORE_ONLY = {"rotnet"}  # no reconstruction: the export has no residual output
VARIANTS = {"first-recipe": FIRST_RECIPE}  # name after "+": extra model args (attn-ocgan's defaults: the rotation guide's evidence in the score)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny 1-epoch checkpoint per exportable model (trained once for the module's tests)."""
    from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
    base = RunConfig(model="ocgan", data=DataConfig(name="mnist5k", normal_class=1), train=TrainConfig(epochs=1, batch_size=64, seed=0))
    folder = tmp_path_factory.mktemp("export_runs")
    torch.manual_seed(0)
    def config(name):
        model, _, variant = name.partition("+")
        return dataclasses.replace(base, model=model, model_args={**SMALL_MODEL_ARGS[model], **VARIANTS.get(variant, {})})

    return {name: Path(train(config(name), folder / name, progress=False)["checkpoint"]) for name in EXPORTABLE}


def _expected(checkpoint: Path) -> tuple[torch.Tensor, ...]:
    """uint8 test images (5, C, H, W), the checkpoint's own scores (5,) and, where it reconstructs,
    residuals (5, 1, H, W)."""
    config, model = model_from_checkpoint(read_checkpoint(checkpoint))
    test = load_one_class(config.data).test[:5]
    images = ((test + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # back to the dataset's bytes
    with torch.no_grad():
        x = to_unit_range(images)
        reconstruction = model.reconstruct(x)
        if reconstruction is None:
            return images, model.score(x)
        return images, model.score(x), (x - reconstruction).pow(2).mean(1, keepdim=True)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_torchscript_gives_the_checkpoints_scores(checkpoints, name, tmp_path):
    out = export_model(checkpoints[name], tmp_path / "scorer.pt", "torchscript")
    images, *expected = _expected(checkpoints[name])
    got = torch.jit.load(str(out))(images)
    assert [tuple(t.shape) for t in got] == [(5,), (5, 1, 32, 32)][: len(expected)]
    assert len(expected) == (1 if name in SCORE_ONLY else 2)
    for value, reference in zip(got, expected):
        torch.testing.assert_close(value, reference, rtol=1e-4, atol=1e-4)
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["model"] == name.partition("+")[0] and sidecar["epoch"] == 1 and sidecar["format"] == "torchscript"
    assert sidecar["input"] == {"name": "images", "shape": ["batch", 1, 32, 32], "dtype": "uint8", "range": [0, 255]}
    assert list(sidecar["outputs"]) == ["scores", "residual"][: len(expected)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scorer.pt", "scorer.pt.json"]  # no temporaries left


@pytest.mark.parametrize("name", EXPORTABLE)
def test_onnx_gives_the_checkpoints_scores(checkpoints, name, tmp_path):
    pytest.importorskip("onnx")  # torch.onnx.export writes through it
    onnxruntime = pytest.importorskip("onnxruntime")
    out = export_model(checkpoints[name], tmp_path / "scorer.onnx", "onnx")
    images, *expected = _expected(checkpoints[name])
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["scores", "residual"][: len(expected)]
    for value, reference in zip(session.run(None, {"images": images.numpy()}), expected):
        # float32 rounding of the runtime's kernels, divided by the normal images' std in the
        # z-normalised scores (tiny 1-epoch models: small stds), reaches ~1e-4
        torch.testing.assert_close(torch.from_numpy(value), reference, rtol=1e-3, atol=1e-3)
    assert json.loads(Path(f"{out}.json").read_text())["format"] == "onnx"


def test_the_attention_score_is_the_combined_one_with_its_statistics_inside(checkpoints):
    """The attention checkpoint scores with both GANs (normalised by its buffers), so the export tests above
    compare the combined score, not the first GAN's alone."""
    _, model = model_from_checkpoint(read_checkpoint(checkpoints["attn-ocgan"]))
    assert model.masked_gan_active and not torch.equal(model.score_mean, torch.zeros_like(model.score_mean))


def test_anogan_is_refused_in_one_line(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, model="anogan", model_args=SMALL_MODEL_ARGS["anogan"])
    checkpoint = Path(train(config, tmp_path / "run", progress=False)["checkpoint"])
    with pytest.raises(UserError, match="cannot be exported") as error:
        export_model(checkpoint, tmp_path / "scorer.pt", "torchscript")
    assert "\n" not in str(error.value) and "evaluate" in str(error.value)
    assert not (tmp_path / "scorer.pt").exists() and not (tmp_path / "scorer.pt.json").exists()


def test_an_unknown_format_is_refused(checkpoints, tmp_path):
    with pytest.raises(UserError, match="unknown export format"):
        export_model(checkpoints["ocgan"], tmp_path / "scorer.bin", "tflite")
