"""attn-ocgan figures: score distributions and residual images of several models of one class."""
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_ocgan.cli import main
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.engine.evaluation import evaluate_model
from attn_ocgan.studies.model_figures import residual_rows, score_groups
from attn_ocgan.engine.trainer import train
from tests.conftest import SMALL_MODEL_ARGS


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny checkpoint each of ocgan and anogan on mnist5k digit 1 (one epoch)."""
    from attn_ocgan.config import DataConfig, RunConfig, TrainConfig

    folder = tmp_path_factory.mktemp("figures")
    paths = {}
    for model in ("ocgan", "anogan"):
        config = RunConfig(model=model, data=DataConfig(name="mnist5k", normal_class=1), train=TrainConfig(epochs=1, batch_size=64),
                           model_args=SMALL_MODEL_ARGS[model])
        paths[model] = Path(train(config, folder / model, progress=False)["checkpoint"])
    return paths


def test_residuals_are_the_distance_to_each_models_own_reconstruction(checkpoints):
    for name, path in checkpoints.items():
        config, model = model_from_checkpoint(read_checkpoint(path))
        images = load_one_class(config.data).test[:4]
        (_, inputs), (_, reconstruction), (_, residual) = residual_rows(model, images)
        assert torch.equal(inputs, images)
        assert torch.allclose(residual, (images - reconstruction).abs())
        assert residual.abs().sum() > 0
        if name == "ocgan":
            assert torch.allclose(reconstruction, model.eval().reconstruct(images))
        else:  # AnoGAN: the generator's image of the searched latent, G(z*)
            latent = model.search_latent(images)[0]
            assert torch.allclose(reconstruction, model.generator(latent), atol=1e-5)


def test_score_groups_match_the_evaluation_and_the_limit_is_a_fixed_subset(checkpoints):
    config, model = model_from_checkpoint(read_checkpoint(checkpoints["ocgan"]))
    data = load_one_class(config.data)
    groups = score_groups(model, data)
    assert [len(groups[g]) for g in ("train normal", "test normal", "test novel")] == [
        len(data.train), int((data.test_is_novel == 0).sum()), int((data.test_is_novel == 1).sum())]
    metrics = evaluate_model(model, data)
    assert np.isclose(groups["train normal"].mean(), metrics["score_mean"]["train_normal"])
    assert np.isclose(groups["test novel"].mean(), metrics["score_mean"]["test_novel"])
    limited, again = score_groups(model, data, limit=50, seed=3), score_groups(model, data, limit=50, seed=3)
    assert all(len(limited[g]) == 50 and np.array_equal(limited[g], again[g]) for g in limited)
    assert set(limited["test novel"]) <= set(groups["test novel"])


def test_the_command_writes_both_figures_and_refuses_a_bad_limit(checkpoints, tmp_path, capsys):
    prefix = tmp_path / "out" / "mnist5k_class1"
    arguments = ["figures", "--checkpoint", str(checkpoints["ocgan"]), "--checkpoint", str(checkpoints["anogan"]),
                 "--n", "3", "--limit", "40", "--out", str(prefix)]
    assert main(arguments) == 0
    for suffix in ("_scores.png", "_residuals.png"):
        written = Path(f"{prefix}{suffix}")
        assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written.stat().st_size > 10_000
    assert main(arguments[:-4] + ["--n", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "error: --n and --limit must be >= 1" in capsys.readouterr().err
    assert not list(tmp_path.glob("bad*"))
    from tests.conftest import untrained_checkpoint

    rotnet = untrained_checkpoint("rotnet", tmp_path / "rotnet.pt")  # scores with a classifier: no residuals
    assert main(["figures", "--checkpoint", str(checkpoints["ocgan"]), "--checkpoint", str(rotnet), "--out", str(tmp_path / "bad")]) == 2
    assert "RotNet has no reconstruction to draw residuals of" in capsys.readouterr().err
    assert not list(tmp_path.glob("bad*"))  # refused before anything was scored or written


def test_figure_columns_name_the_run_folder_unless_it_is_named_after_the_model():
    from attn_ocgan.studies.loading import checkpoint_label

    assert checkpoint_label("ocgan", "runs/figures/ocgan/checkpoints/last.pt") == "ocgan"
    assert checkpoint_label("ocgan", "runs/mnist8-long-run-name-here/checkpoints/last.pt").split("\n") == \
        ["ocgan", "mnist8-long-run-name-", "here"]
    assert checkpoint_label("ocgan", "runs/mnist8-long-run-name-here/checkpoints/last.pt", wrap=None) == \
        "ocgan (mnist8-long-run-name-here)"  # table rows (localize): one line


def test_the_score_axis_says_what_the_model_scores():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attn_ocgan.viz.plots import draw_score_histogram

    figure, axis = plt.subplots()
    groups = {"test normal": np.array([0.1, 0.2]), "test novel": np.array([0.3, 0.5])}
    draw_score_histogram(axis, groups, score_name="latent distance")
    assert axis.get_xlabel() == "novelty score (latent distance)"
    draw_score_histogram(axis, groups)
    assert axis.get_xlabel() == "novelty score"
    plt.close(figure)
