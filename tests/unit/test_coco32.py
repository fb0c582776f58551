"""COCO32 builder and dataset, on a synthetic COCO-format fixture written by the test."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attn_ocgan.cli import main
from attn_ocgan.data import coco32_build
from attn_ocgan.data.coco32_build import BuildOptions, build_coco32, skip_reason
from attn_ocgan.data.datasets import dataset_class_names, load_coco32, load_coco32_masks
from attn_ocgan.errors import UserError
from tests.conftest import REPO, shared_data_root

CATEGORIES = [{"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]
OBJECTS_PER_CLASS = 12  # eligible cat and dog objects in the fixture


def _build(arguments: list[str]) -> int:
    """``attn-ocgan build-coco32 ARGUMENTS`` (``tools/build_coco_subset.py`` is the same command)."""
    return main(["build-coco32", *arguments])


def write_fake_coco(root: Path, missing_images: int = 0) -> Path:
    """COCO layout with one 60x60 object per image: the object fills the box's left half.

    Cats use polygons, dogs uncompressed RLE; a few extra annotations sit exactly on and
    just past the size/aspect bounds, and one is crowd.
    """
    rng = np.random.default_rng(0)
    images, annotations = [], []
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()

    def add_image(image_id):
        pixels = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
        name = f"{image_id:012d}.png"
        if image_id > missing_images:  # the first ``missing_images`` files are not written
            Image.fromarray(pixels).save(root / "val2017" / name)
        images.append({"id": image_id, "file_name": name, "height": 120, "width": 160})

    def left_half_rle(x, y, w, h):
        mask = np.zeros((120, 160), dtype=np.uint8)
        mask[y:y + h, x:x + w // 2] = 1
        flat = mask.flatten(order="F")  # COCO RLE is column-major, counts start with zeros
        changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0)
        counts = np.diff(np.concatenate([[0], changes])).tolist()
        return {"counts": counts, "size": [120, 160]}  # flat[0] == 0, so counts start with zeros

    annotation_id = 1000
    for index in range(2 * OBJECTS_PER_CLASS):
        image_id = index + 1
        add_image(image_id)
        category = 17 if index % 2 == 0 else 18
        x, y, w, h = 20, 30, 60, 60
        segmentation = ([[x, y, x + w / 2, y, x + w / 2, y + h, x, y + h]] if category == 17
                        else left_half_rle(x, y, w, h))
        annotations.append({"id": annotation_id, "image_id": image_id, "category_id": category, "iscrowd": 0,
                            "bbox": [x, y, w, h], "area": w * h / 2, "segmentation": segmentation})
        annotation_id += 1
    add_image(99)
    for bbox, crowd in [([0, 0, 49.9, 60], 0), ([0, 0, 100.5, 50], 0), ([0, 0, 50, 100.5], 0), ([0, 0, 60, 60], 1)]:
        annotations.append({"id": annotation_id, "image_id": 99, "category_id": 17, "iscrowd": crowd, "bbox": bbox,
                            "area": 1.0, "segmentation": [[0, 0, 10, 0, 10, 10]] if not crowd
                            else {"counts": [0, 19200], "size": [120, 160]}})
        annotation_id += 1
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return root


def _options(tmp_path, **overrides):
    values = dict(coco_root=tmp_path / "coco", out=tmp_path / "coco32", splits=("val2017",), classes=("cat", "dog"),
                  per_class=10, test_per_class=2, seed=0)
    return BuildOptions(**{**values, **overrides})


@pytest.fixture
def fake_coco(tmp_path):
    return write_fake_coco(tmp_path / "coco")


def test_size_and_aspect_filters_are_inclusive_at_their_bounds():
    options = BuildOptions()
    keep = lambda w, h, crowd=0: skip_reason({"bbox": [0, 0, w, h], "iscrowd": crowd}, options)  # noqa: E731
    assert keep(50, 50) is None and keep(100, 50) is None and keep(50, 100) is None
    assert keep(49.99, 60) == "box smaller than min-side" and keep(60, 49.99) == "box smaller than min-side"
    assert keep(100.01, 50) == "aspect ratio outside range" and keep(50, 100.01) == "aspect ratio outside range"
    assert keep(60, 60, crowd=1) == "crowd"


def test_build_writes_pairs_manifest_and_stratified_split(fake_coco, tmp_path):
    summary = build_coco32(_options(tmp_path), progress=False)
    out = tmp_path / "coco32"
    assert summary["classes"]["cat"] == {"eligible": 12, "taken": 10, "train": 8, "test": 2, "skipped": {
        "aspect ratio outside range": 2, "box smaller than min-side": 1, "crowd": 1}}
    assert summary["classes"]["dog"]["train"] == 8 and summary["classes"]["dog"]["test"] == 2
    rows = coco32_build.read_manifest(out)
    assert len(rows) == 20 and {row["split"] for row in rows} == {"train", "test"}
    for row in rows:
        relative = Path(row["split"]) / row["class"] / f"{row['annotation_id']}.png"
        unmasked = np.asarray(Image.open(out / "unmasked" / relative))
        masked = np.asarray(Image.open(out / "masked" / relative))
        mask = np.asarray(Image.open(out / "masks" / relative)) > 127
        assert unmasked.shape == (32, 32, 3) and mask.shape == (32, 32)
        assert (masked[~mask] == 0).all() and (masked[mask] == unmasked[mask]).all()
        # the object is the left half of the box (polygon for cats, RLE for dogs)
        assert mask[:, :15].all() and not mask[:, 17:].any()
        assert row["mask_coverage"] == pytest.approx(mask.mean(), abs=1e-6)
        assert (unmasked[~mask] != 0).any()  # background really is there in the unmasked crop


def test_two_builds_are_byte_identical_and_seed_changes_the_sample(fake_coco, tmp_path):
    build_coco32(_options(tmp_path, out=tmp_path / "first"), progress=False)
    build_coco32(_options(tmp_path, out=tmp_path / "second"), progress=False)
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}  # noqa: E731
    assert files(tmp_path / "first") == files(tmp_path / "second")
    build_coco32(_options(tmp_path, out=tmp_path / "other", seed=1), progress=False)
    sample = lambda root: {r["annotation_id"] for r in coco32_build.read_manifest(root)}  # noqa: E731
    assert sample(tmp_path / "first") != sample(tmp_path / "other")

    # --overwrite replaces a build (the seed-1 sample becomes the seed-0 one), never a folder that is not one
    build_coco32(_options(tmp_path, out=tmp_path / "other", overwrite=True), progress=False)
    assert files(tmp_path / "other") == files(tmp_path / "first")
    (tmp_path / "first" / "notes.txt").write_text("mine")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("mine")
    for out, reason in ((tmp_path / "first", "notes.txt"), (tmp_path / "home", "thesis.tex"),
                        (tmp_path / "home" / "thesis.tex", "is a file")):
        with pytest.raises(UserError, match=f"--overwrite: .*{reason}.*nothing was removed"):
            build_coco32(_options(tmp_path, out=out, overwrite=True), progress=False)
    assert (tmp_path / "first" / "notes.txt").read_text() == "mine" and (tmp_path / "home" / "thesis.tex").read_text() == "mine"


def test_refuses_short_classes_unless_allow_fewer(fake_coco, tmp_path, capsys):
    arguments = ["--coco-root", str(fake_coco), "--splits", "val2017", "--classes", "cat,dog,car",
                 "--per-class", "10", "--test-per-class", "2", "--quiet"]
    assert _build([*arguments, "--out", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    assert "car" in error and "<- short" in error and error.strip().splitlines()[-1].startswith("error: too few")
    assert not (tmp_path / "refused").exists()

    assert _build([*arguments, "--out", str(tmp_path / "fewer"), "--allow-fewer"]) == 0
    captured = capsys.readouterr()
    assert "warning: built fewer" in captured.err and "car" in captured.err
    summary = json.loads((tmp_path / "fewer" / "summary.json").read_text())
    assert summary["complete"] is False and summary["classes"]["car"]["taken"] == 0


def test_the_script_builds_what_the_command_builds(fake_coco, tmp_path):
    arguments = ["--coco-root", str(fake_coco), "--splits", "val2017", "--classes", "cat,dog", "--per-class", "10",
                 "--test-per-class", "2", "--quiet"]
    assert _build([*arguments, "--out", str(tmp_path / "command"), "--contact-sheet", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    script = subprocess.run([sys.executable, "tools/build_coco_subset.py", *arguments, "--out", str(tmp_path / "script")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert script.returncode == 0, script.stderr
    assert "wrote 16 train + 4 test crops" in script.stdout
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))  # noqa: E731
                          if p.is_file() and p.name != "summary.json"}  # the summary records --out
    assert files(tmp_path / "command") == files(tmp_path / "script") and len(files(tmp_path / "script")) == 3 * 20 + 1


def test_a_contact_sheet_that_cannot_be_written_stops_before_the_build(fake_coco, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert _build(["--coco-root", str(fake_coco), "--splits", "val2017", "--classes", "cat,dog", "--per-class", "10",
                   "--test-per-class", "2", "--quiet", "--out", str(tmp_path / "o"),
                   "--contact-sheet", str(tmp_path / "taken" / "sheet.png")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "taken" in error and not (tmp_path / "o").exists()


def test_allow_fewer_keeps_the_test_share_stratified(fake_coco, tmp_path):
    summary = build_coco32(_options(tmp_path, per_class=100, test_per_class=25, allow_fewer=True), progress=False)
    assert summary["classes"]["cat"]["test"] == 3 and summary["classes"]["cat"]["train"] == 9  # 12 * 25 %


def test_missing_images_are_skipped_and_counted(tmp_path):
    write_fake_coco(tmp_path / "coco", missing_images=2)  # image 1 (cat) and 2 (dog)
    summary = build_coco32(_options(tmp_path, allow_fewer=True, per_class=12), progress=False)
    assert summary["classes"]["cat"]["skipped"]["missing image file"] == 1
    assert summary["classes"]["cat"]["eligible"] == 11 and summary["classes"]["dog"]["taken"] == 11


def test_bad_annotations_stop_with_one_line_and_nothing_written(fake_coco, tmp_path, capsys):
    (fake_coco / "annotations" / "instances_val2017.json").write_text("{ not json")
    assert _build(["--coco-root", str(fake_coco), "--splits", "val2017", "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "not valid JSON" in error and not (tmp_path / "o").exists()

    assert _build(["--coco-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "COCO not found" in error and "cocodataset.org" in error


def test_interrupted_build_leaves_no_half_dataset(fake_coco, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = coco32_build._save_png

    def failing_save(array, path):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt
        original(array, path)

    monkeypatch.setattr(coco32_build, "_save_png", failing_save)
    with pytest.raises(KeyboardInterrupt):
        build_coco32(_options(tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "coco"]  # no output, no temporary folder


def test_coco32_dataset_variants_labels_and_masks(fake_coco, tmp_path):
    build_coco32(_options(tmp_path), progress=False)
    unmasked = load_coco32(tmp_path / "coco32", 32, False, "unmasked")
    masked = load_coco32(tmp_path / "coco32", 32, False, "masked")
    assert unmasked.class_names == ("cat", "dog") == dataset_class_names("coco32", str(tmp_path))
    assert unmasked.train_images.shape == (16, 3, 32, 32)
    assert torch.equal(unmasked.train_labels, torch.tensor([0] * 8 + [1] * 8))
    masks = load_coco32_masks(tmp_path / "coco32", "test")
    assert masks.shape == (4, 1, 32, 32)
    assert torch.equal(masked.test_images, unmasked.test_images * masks)
    with pytest.raises(UserError, match="variant"):
        load_coco32(tmp_path / "coco32", 32, False, "blurred")


@pytest.mark.skipif(shared_data_root() is None or not (shared_data_root() / "coco").is_dir(),
                    reason="../shared/data/coco is not on this machine")
def test_real_coco_subset_matches_the_documented_eligible_counts(tmp_path):
    options = BuildOptions(coco_root=shared_data_root() / "coco", out=tmp_path / "coco32", allow_fewer=True)
    summary = build_coco32(options, progress=False, echo=lambda line: None)
    eligible = {name: counts["eligible"] for name, counts in summary["classes"].items()}
    assert eligible == {"airplane": 6, "car": 38, "bird": 25, "cat": 15, "sports ball": 2, "dog": 23, "bowl": 65,
                        "horse": 14, "boat": 8, "truck": 14}  # ../shared/data/README.md
    assert summary["total"]["train"] + summary["total"]["test"] == 210
    masks = load_coco32_masks(tmp_path / "coco32", "test")
    assert 0.2 < masks.float().mean() < 0.9  # real instance masks cover part of each crop


def test_build_and_read_follow_the_one_data_root_rule(fake_coco, tmp_path, monkeypatch):
    """build-coco32 --data-root ROOT reads ROOT/coco and writes ROOT/coco32, where --dataset coco32
    reads it; $ATTN_OCGAN_DATA stands in for --data-root; the old form (the COCO32 folder itself as
    the data root) fails with one line saying what to pass instead."""
    from attn_ocgan.data import load_splits

    assert fake_coco == tmp_path / "coco"
    assert _build(["--data-root", str(tmp_path), "--splits", "val2017", "--classes", "cat,dog", "--per-class", "10",
                   "--test-per-class", "2", "--quiet"]) == 0
    assert (tmp_path / "coco32" / "manifest.csv").is_file()
    monkeypatch.setenv("ATTN_OCGAN_DATA", str(tmp_path))
    assert len(load_splits("coco32", None).train_labels) == 16
    with pytest.raises(UserError, match="is a COCO32 folder itself; pass the folder above it as --data-root"):
        load_splits("coco32", str(tmp_path / "coco32"))
