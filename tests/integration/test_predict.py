"""attn-ocgan predict and thresholds stored with the model (issue 29 items 1, 2, 7), on one tiny run."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from attn_ocgan.cli import main
from attn_ocgan.data import load_one_class
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.engine.evaluation import compute_scores
from attn_ocgan.engine.thresholds import AUTO_QUANTILE, NORMAL_SCORES, parse_threshold
from attn_ocgan.errors import UserError
from tests.conftest import SMALL_MODEL_ARGS

ARGS = [f"{key}={value}" for key, value in SMALL_MODEL_ARGS["attn-ocgan"].items()]


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    """An attention model, 2 epochs on mnist5k digit 1 (the masked GAN trains in epoch 2)."""
    out = tmp_path_factory.mktemp("predict") / "run"
    model_args = [item for arg in ARGS for item in ("--model-arg", arg)]
    assert main(["train", "--normal-class", "1", "--epochs", "2", "--batch-size", "100", "--eval-every", "0",
                 "--threads", "1", *model_args, "--out", str(out)]) == 0
    return out / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def test_pngs(tmp_path_factory, attention_run):
    """The first 6 test images as 8-bit PNGs (lossless), with their scores from the checkpoint."""
    config, model = model_from_checkpoint(read_checkpoint(attention_run))
    data = load_one_class(config.data)
    folder = tmp_path_factory.mktemp("images")
    for index in range(6):
        pixels = ((data.test[index, 0] + 1) * 127.5).round().byte().numpy()
        Image.fromarray(pixels).save(folder / f"digit{index}.png")
    return folder, compute_scores(model, data.test[:6])


def _rows(out):
    with (out / "scores.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_checkpoint_keeps_the_normal_training_scores_and_auto_is_their_099_quantile(attention_run):
    payload = read_checkpoint(attention_run)
    stored = payload[NORMAL_SCORES]
    config, model = model_from_checkpoint(payload)
    data = load_one_class(config.data)
    assert stored["source"] == "normal training images" and len(stored["scores"]) == len(data.train)
    np.testing.assert_allclose(stored["scores"].numpy(), np.sort(compute_scores(model, data.train)), rtol=1e-5)
    assert parse_threshold("auto").quantile == AUTO_QUANTILE == 0.99


def test_predict_scores_files_folders_and_globs_as_the_model_scores_its_test_images(attention_run, test_pngs, tmp_path, capsys):
    folder, expected = test_pngs
    (folder / "notes").mkdir(exist_ok=True)
    (folder / "notes" / "broken.png").write_bytes(b"not a png")
    (folder / "notes" / "readme.txt").write_text("not an image: not an input")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(attention_run), "--out", str(out), "--maps", str(folder),
                 str(folder / "digit0.png"), str(folder / "digit[12].png")]) == 0
    rows = _rows(out)
    scored = {row["path"]: row for row in rows if not row["problem"]}
    assert len(scored) == 6 and len(rows) == 7  # duplicates once; the text file is no input
    assert [row for row in rows if row["problem"]][0]["problem"].startswith("unreadable")
    for index in range(6):
        assert float(scored[str(folder / f"digit{index}.png")]["score"]) == pytest.approx(expected[index], rel=1e-4, abs=1e-5)
    assert {"first_gan", "masked_gan"} <= set(rows[0])  # the attention model's components
    threshold = float(np.quantile(read_checkpoint(attention_run)[NORMAL_SCORES]["scores"].double().numpy(), 0.99))
    assert all(row["decision"] == ("anomalous" if float(row["score"]) > threshold else "normal") for row in scored.values())
    assert len(list((out / "maps").glob("*.png"))) == 6
    assert "1 unreadable (listed in scores.csv)" in capsys.readouterr().out
    # nothing readable: an error, and no scores.csv
    assert main(["predict", "--checkpoint", str(attention_run), "--out", str(tmp_path / "none"),
                 str(folder / "notes" / "broken.png")]) == 2
    assert "none of the 1 input(s) could be read as an image" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_number_threshold_decides_and_colour_or_small_images_are_converted(attention_run, test_pngs, tmp_path, capsys):
    folder, expected = test_pngs
    extra = tmp_path / "extra"
    extra.mkdir()
    Image.fromarray(np.full((64, 48, 3), 200, np.uint8)).save(extra / "colour.jpg")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(extra / "small.png")
    middle = float(np.median(expected))
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(attention_run), "--out", str(out), "--threshold", f"{middle}",
                 str(folder / "digit*.png"), str(extra)]) == 0
    rows = {row["path"]: row for row in _rows(out)}
    assert sum(row["decision"] == "anomalous" for path, row in rows.items() if "digit" in path) == int((expected > middle).sum())
    assert rows[str(extra / "colour.jpg")]["score"] and rows[str(extra / "small.png")]["score"]
    assert "1 image(s) smaller than 32 x 32 were upscaled" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--threshold", "high"], "--threshold 'high' is not 'auto', a quantile such as q0.995"),
    (["--threshold", "q1.5"], "--threshold 'q1.5' is not"),
    (["NO_SUCH_FOLDER/*.png"], "is not a file, a folder or a glob pattern"),
])
def test_bad_predict_input_is_one_line(attention_run, tmp_path, capsys, argv, message):
    inputs = [] if any(not a.startswith("--") and "/" in a for a in argv) else [str(tmp_path)]
    assert main(["predict", "--checkpoint", str(attention_run), "--out", str(tmp_path / "out"), *argv, *inputs]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_an_older_checkpoint_without_normal_scores_needs_a_number(attention_run, test_pngs, tmp_path, capsys):
    folder, _ = test_pngs
    payload = read_checkpoint(attention_run)
    del payload[NORMAL_SCORES]
    torch.save(payload, tmp_path / "old.pt")
    assert main(["predict", "--checkpoint", str(tmp_path / "old.pt"), "--out", str(tmp_path / "out"), str(folder)]) == 2
    assert "stores no scores of normal images" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(tmp_path / "old.pt"), "--out", str(tmp_path / "out"), "--threshold", "0.5",
                 str(folder)]) == 0


def test_a_checkpoint_of_an_unfinished_run_says_so(attention_run, test_pngs, tmp_path, capsys):
    folder, _ = test_pngs
    payload = read_checkpoint(attention_run)
    del payload[NORMAL_SCORES]  # as last.pt is while a run trains: no scores of normal images yet
    planned = payload["config"]["train"]["epochs"]
    payload["config"]["train"]["epochs"] = planned + 4
    torch.save(payload, tmp_path / "last.pt")
    argv = ["predict", "--checkpoint", str(tmp_path / "last.pt"), "--out", str(tmp_path / "out"), str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"is from epoch {planned} of {planned + 4}" in err and "--resume" in err and err.count("\n") == 1
    assert main([*argv, "--threshold", "0.5"]) == 0
    assert "its training has not finished" in capsys.readouterr().err
    payload["config"]["train"]["epochs"] = planned  # finished (an older checkpoint): no warning, the old message
    torch.save(payload, tmp_path / "last.pt")
    assert main(argv) == 2 and "written before thresholds existed" in capsys.readouterr().err


def test_evaluate_reports_precision_recall_and_f1_at_the_threshold(attention_run, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(attention_run), "--out", str(tmp_path), "--threshold", "q0.9"]) == 0
    decision = json.loads((tmp_path / "metrics.json").read_text())["decision"]
    assert set(decision) == {"threshold", "precision", "recall", "f1", "flagged", "chosen"}
    assert 0 <= decision["precision"] <= 1 and "the 0.9 quantile" in decision["chosen"]
    assert "precision" in capsys.readouterr().out
    with pytest.raises(UserError):
        parse_threshold("q0")


def test_the_exported_scorer_agrees_with_predict(attention_run, test_pngs, tmp_path, capsys):
    """The whole path: train (fixture), predict, export, compare the exported model's scores with predict's."""
    onnxruntime = pytest.importorskip("onnxruntime")
    folder, _ = test_pngs
    assert main(["predict", "--checkpoint", str(attention_run), "--out", str(tmp_path / "out"), str(folder / "digit*.png")]) == 0
    predicted = {row["path"]: float(row["score"]) for row in _rows(tmp_path / "out")}
    assert main(["export", "--checkpoint", str(attention_run), "--format", "onnx", "--out", str(tmp_path / "scorer.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "scorer.onnx"), providers=["CPUExecutionProvider"])
    paths = sorted(predicted)
    images = np.stack([np.asarray(Image.open(path))[None] for path in paths]).astype(np.uint8)
    scores, residual = session.run(None, {"images": images})
    # ONNX Runtime's float32 kernels differ from torch's by ~1e-6, which the z-normalised score
    # components (divided by a 1-epoch model's small std on normal images) magnify to ~1e-4
    np.testing.assert_allclose(scores, [predicted[path] for path in paths], rtol=1e-3, atol=1e-3)
    assert residual.shape == (len(paths), 1, 32, 32)
    assert "wrote" in capsys.readouterr().out
