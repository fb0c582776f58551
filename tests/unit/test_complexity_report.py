"""attn-ocgan report complexity (attn_ocgan/studies/complexity_calibration.py): raw and complexity-calibrated
AUC per checkpoint, the same numbers every evaluation logs."""
from pathlib import Path

import pytest
import torch

from attn_ocgan.cli import main
from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.calibration import z_combination
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.engine.evaluation import auc, evaluate_model, scores_and_columns
from attn_ocgan.engine.trainer import train
from attn_ocgan.studies.complexity_calibration import checkpoint_result
from tests.conftest import SMALL_MODEL_ARGS


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One tiny 1-epoch mnist5k checkpoint per model (shared by the tests below)."""
    folder = tmp_path_factory.mktemp("calibration_runs")
    torch.manual_seed(0)
    configs = {model: RunConfig(model=model, data=DataConfig(name="mnist5k", normal_class=1),
                                train=TrainConfig(epochs=1, batch_size=64, seed=0), model_args=SMALL_MODEL_ARGS[model])
               for model in ("attn-ocgan", "ocgan")}
    return {model: Path(train(config, folder / model, progress=False)["checkpoint"]) for model, config in configs.items()}


@pytest.mark.parametrize("model", ["attn-ocgan", "ocgan"])
def test_raw_columns_are_the_models_own_aucs_and_files_are_written(checkpoints, tmp_path, model):
    checkpoint = checkpoints[model]
    config, trained = model_from_checkpoint(read_checkpoint(checkpoint))
    metrics = evaluate_model(trained, load_one_class(config.data))
    result = checkpoint_result(checkpoint)
    if model == "attn-ocgan":
        assert list(result["aucs"]) == [*trained.score_component_names, "combined"]
        assert len(trained.score_component_names) == 4  # the defaults: both GANs and the guide's rotation evidence
        for name in trained.score_component_names:
            assert result["aucs"][name][0] == pytest.approx(metrics["auc_per_score_component"][name], abs=1e-6)
        # z_combination (which combines the calibrated errors) rebuilds the model's own score from the raw ones
        data = load_one_class(config.data)
        columns = {name: scores_and_columns(trained, images)[1] for name, images in (("train", data.train), ("test", data.test))}
        rebuilt = z_combination(columns["test"], columns["train"], trained.score_component_weights)
        assert auc(data.test_is_novel.numpy(), rebuilt) == pytest.approx(metrics["auc"], abs=2e-3)
    raw, calibrated = result["aucs"]["combined" if model == "attn-ocgan" else "score"]
    assert raw == pytest.approx(metrics["auc"], abs=1e-9) and calibrated != raw
    # every evaluation (and so every protocol cell's metrics log) carries the same diagnostic
    assert metrics["complexity"]["auc_calibrated"] == pytest.approx(calibrated, abs=1e-9)
    assert metrics["complexity"]["auc_complexity_alone"] == pytest.approx(result["complexity_auc"])
    out = tmp_path / "calibration.md"
    assert main(["report", "complexity", "--threads", "1", "--out", str(out), str(checkpoint)]) == 0
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {result['class_name']} |"))
    assert f"{raw:.3f} → {calibrated:.3f}" in row
    assert f"attn-ocgan report complexity --out {out} --threads 1 {checkpoint}" in text  # "Produced by"
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_mixed_models_are_refused_and_nothing_is_written(checkpoints, tmp_path, capsys):
    out = tmp_path / "calibration.md"
    assert main(["report", "complexity", "--out", str(out), *map(str, checkpoints.values())]) == 2
    assert "different models (attn-ocgan, ocgan)" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".png").exists()
