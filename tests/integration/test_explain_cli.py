"""gradcam and localize commands on checkpoints trained on a synthetic COCO32 (also: train --dataset coco32)."""
import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from attn_ocgan.cli import main
from attn_ocgan.data.coco32_build import build_coco32
from tests.unit.test_coco32 import _options, write_fake_coco

TINY = ["--model-arg", "generator_width=8", "--model-arg", "classifier_width=8", "--model-arg", "visual_disc_width=4",
        "--model-arg", "latent_channels=8", "--epochs", "2", "--batch-size", "8", "--eval-every", "0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A COCO32 folder and one vanilla + one attention checkpoint trained on its 'cat' crops."""
    root = tmp_path_factory.mktemp("explain")
    write_fake_coco(root / "coco")
    build_coco32(_options(root), progress=False)
    checkpoints = {}
    for model in ("ocgan", "attn-ocgan"):
        out = root / "runs" / model
        extra = ["--model-arg", "guide_width=8", "--mask-warmup-epochs", "1"] if model == "attn-ocgan" else []
        assert main(["train", "--model", model, "--dataset", "coco32", "--data-root", str(root),
                     "--normal-class", "0", "--out", str(out), *TINY, *extra]) == 0
        checkpoints[model] = out / "checkpoints" / "last.pt"
    return root, checkpoints


def test_gradcam_cli_writes_figure_and_tensorboard(trained, capsys):
    root, checkpoints = trained
    figure, logdir = root / "gradcam.png", root / "tb"
    assert main(["gradcam", "--checkpoint", str(checkpoints["ocgan"]), "--checkpoint", str(checkpoints["attn-ocgan"]),
                 "--n", "2", "--out", str(figure), "--logdir", str(logdir)]) == 0
    assert figure.stat().st_size > 10_000
    events = EventAccumulator(str(logdir), size_guidance={"images": 0})
    events.Reload()
    assert {"gradcam/normal", "gradcam/novel"} <= set(events.Tags()["images"])
    # a head the vanilla checkpoint does not have: one line, non-zero
    capsys.readouterr()
    assert main(["gradcam", "--checkpoint", str(checkpoints["ocgan"]), "--head", "guide", "--out", str(figure)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no 'guide' head" in error
    # a --logdir that is a file: refused before the figure is written
    (root / "notes.txt").write_text("not a folder")
    assert main(["gradcam", "--checkpoint", str(checkpoints["ocgan"]), "--n", "2", "--out", str(root / "late.png"),
                 "--logdir", str(root / "notes.txt")]) == 2
    assert f"cannot write or read {root / 'notes.txt'}" in capsys.readouterr().err and not (root / "late.png").exists()


def test_localize_cli_measures_attention_and_gradcam_against_object_masks(trained):
    root, checkpoints = trained
    out = root / "localisation.csv"
    assert main(["localize", "--checkpoint", str(checkpoints["ocgan"]), "--checkpoint", str(checkpoints["attn-ocgan"]),
                 "--data-root", str(root), "--split", "all", "--out", str(out)]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model"].split(" ")[0], r["map"]) for r in rows] == [
        ("centre", "baseline"), ("whole", "baseline"), ("ocgan", "Grad-CAM visual_discriminator"),
        ("attn-ocgan", "Grad-CAM visual_discriminator"), ("attn-ocgan", "attention")]
    assert all(r["images"] == "20" and 0 <= float(r["pointing"]) <= 1 for r in rows)
    # occlusion is measured for the Grad-CAM heads only: numbers there, blank for baselines and masks
    assert [bool(r["occlusion_object"]) for r in rows] == [False, False, True, True, False]
    # the fixture's objects fill the left half of each crop: a constant map has IoU 1/2 and misses
    whole = rows[1]
    assert float(whole["pointing"]) == 0 and abs(float(whole["iou_at_0.5"]) - 0.5) < 0.02
    # the Markdown says what a map of bounded area could reach at best: share 0.2 of half-filled crops: 0.4
    assert "(share: IoU): 0.2: 0.40" in out.with_suffix(".md").read_text()
    assert "hits with probability 0.500 (chance)" in out.with_suffix(".md").read_text()  # half of each crop
    assert out.with_suffix(".md").read_text().count("\n| ") == 6  # header + 5 rows
