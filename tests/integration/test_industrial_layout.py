"""The industrial anomaly layout (train/good, test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png),
classes by name, pixel-level AUROC, and image sizes other than 32 for every model (issue 29 item 3)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from attn_ocgan.cli import main
from attn_ocgan.data import load_splits
from attn_ocgan.engine.checkpoint import read_checkpoint
from attn_ocgan.registry import known_models
from tests.conftest import SMALL_MODEL_ARGS


def _part(rng, defect: str | None, size: int = 40):
    """A grey 'part' with texture; a defect adds a bright square (scratch) or a dark one (hole)."""
    pixels = np.clip(rng.normal(110, 12, (size, size, 3)), 0, 255)
    mask = np.zeros((size, size), np.uint8)
    if defect:
        y, x = rng.integers(4, size - 16, 2)
        pixels[y:y + 12, x:x + 12] = 250 if defect == "scratch" else 5
        mask[y:y + 12, x:x + 12] = 255
    return Image.fromarray(pixels.astype(np.uint8)), Image.fromarray(mask)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("industrial") / "parts"
    rng = np.random.default_rng(0)
    for split, defect, count in (("train", None, 24), ("test", None, 6), ("test", "scratch", 6), ("test", "hole", 6)):
        folder = root / split / (defect or "good")
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = _part(rng, defect)
            image.save(folder / f"{index:03d}.png")
            if defect == "scratch":  # holes have no ground truth: their masks count as all normal
                (root / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
                mask.save(root / "ground_truth" / defect / f"{index:03d}_mask.png")
    return root


def test_the_layout_loads_with_defect_types_as_classes_and_the_masks_beside_them(tree):
    splits = load_splits("folder", str(tree), size=32)
    assert splits.class_names == ("good", "hole", "scratch")
    assert set(splits.train_labels.tolist()) == {0} and len(splits.train_labels) == 24
    assert splits.test_masks.shape == (18, 1, 32, 32)
    by_class = {name: splits.test_masks[splits.test_labels == index] for index, name in enumerate(splits.class_names)}
    assert by_class["good"].sum() == 0 and by_class["hole"].sum() == 0
    assert all(0.05 < float((mask > 0).float().mean()) < 0.2 for mask in by_class["scratch"])  # a 12 x 12 square of 40 x 40
    # the mask lies on the bright square of its image
    scratch = splits.test_images[splits.test_labels == 2].float().mean(1, keepdim=True)
    inside, outside = scratch[by_class["scratch"] > 0].mean(), scratch[by_class["scratch"] == 0].mean()
    assert inside > outside + 80


def test_an_unreadable_ground_truth_mask_is_one_line(tree, tmp_path, capsys):
    import shutil

    copy = tmp_path / "parts"
    shutil.copytree(tree, copy)
    (copy / "ground_truth" / "scratch" / "002_mask.png").write_bytes(b"not a png")
    assert main(["train", "--model", "ocgan", "--dataset", "folder", "--data-root", str(copy), "--normal-class", "good",
                 "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "002_mask.png cannot be read as an image" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_protocol_over_a_class_without_training_images_stops_before_training(tree, tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["protocol", "--model", "ocgan", "--dataset", "folder", "--data-root", str(tree), "--classes", "0,1",
                 "--epochs", "1", "--results", str(results), "--runs", str(tmp_path / "runs")]) == 2
    assert "class 1 has 0 training images; need at least 2" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # class 0 (good) did not train first


def test_train_by_class_name_reports_each_defect_type_and_pixel_auroc(tree, tmp_path):
    out = tmp_path / "run"
    small = [item for key, value in SMALL_MODEL_ARGS["ocgan"].items() for item in ("--model-arg", f"{key}={value}")]
    assert main(["train", "--model", "ocgan", "--dataset", "folder", "--data-root", str(tree), "--normal-class", "good",
                 "--epochs", "1", "--batch-size", "8", "--eval-every", "0", "--threads", "1", *small, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["normal_class_name"] == "good" and set(metrics["auc_per_novel_class"]) == {"hole", "scratch"}
    assert 0 <= metrics["pixel_auc"]["residual"] <= 1 and "attention" not in metrics["pixel_auc"]
    assert read_checkpoint(out / "checkpoints" / "last.pt")["config"]["data"]["normal_class"] == 0  # saved as the index


def test_an_unknown_class_name_is_one_line(tree, tmp_path, capsys):
    assert main(["train", "--dataset", "folder", "--data-root", str(tree), "--normal-class", "shiny", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "normal class 'shiny' is not a class of this dataset (good, hole, scratch)" in err and err.count("\n") == 1


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("model", known_models())
def test_every_model_trains_and_scores_at_64_and_128_pixels(model, size, tree, tmp_path):
    out = tmp_path / "run"
    small = [item for key, value in SMALL_MODEL_ARGS[model].items() for item in ("--model-arg", f"{key}={value}")]
    assert main(["train", "--model", model, "--dataset", "folder", "--data-root", str(tree), "--normal-class", "good",
                 "--size", str(size), "--epochs", "1", "--batch-size", "8", "--eval-every", "0", "--threads", "1", *small,
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["auc"] <= 1 and read_checkpoint(out / "checkpoints" / "last.pt")["config"]["model_args"]["image_size"] == size
