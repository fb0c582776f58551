"""The worked example's dataset builder (attn_ocgan/data/defect_example.py) on a tiny fake COCO."""
import numpy as np
import pytest
from PIL import Image

from attn_ocgan.data import load_splits
from attn_ocgan.data.defect_example import DEFECTS, build_defect_example
from attn_ocgan.errors import UserError
from tests.unit.test_coco32 import write_fake_coco


def test_the_builder_writes_the_industrial_layout_with_masks_on_the_defects(tmp_path):
    coco = write_fake_coco(tmp_path / "coco")
    out = tmp_path / "defects"
    counts = build_defect_example(coco, out, "cat", size=32, crops_per_instance=2, echo=lambda line: None)
    assert counts["train/good"] > 0 and counts["test/good"] == counts["test/foreign_patch"] == counts["test/smudge"] > 0
    splits = load_splits("folder", str(out), size=32)
    assert splits.class_names == ("foreign_patch", "good", "smudge") and set(splits.train_labels.tolist()) == {1}
    for index, defect in enumerate(splits.class_names):
        masks = splits.test_masks[splits.test_labels == index]
        if defect in DEFECTS:  # every defective part has a mask of a sixth to a third of its side
            assert all(0.02 < float((m > 0).float().mean()) < 0.2 for m in masks)
        else:
            assert masks.sum() == 0
    # a smudge darkens the part under its mask
    name = sorted((out / "test" / "smudge").iterdir())[0].name
    image = np.asarray(Image.open(out / "test" / "smudge" / name)).mean(2)
    mask = np.asarray(Image.open(out / "ground_truth" / "smudge" / name.replace(".png", "_mask.png"))) > 0
    assert image[mask].mean() < image[~mask].mean() - 20
    # rebuilding replaces its own earlier build, never another folder
    assert build_defect_example(coco, out, "cat", size=32, crops_per_instance=2, echo=lambda line: None) == counts
    (tmp_path / "mine").mkdir()
    with pytest.raises(UserError, match="is not a dataset this builder wrote"):
        build_defect_example(coco, tmp_path / "mine", "cat", size=32, echo=lambda line: None)
    with pytest.raises(UserError, match="COCO has no class 'unicorn'"):
        build_defect_example(coco, tmp_path / "x", "unicorn", echo=lambda line: None)


def test_the_worked_example_runs_end_to_end_and_can_run_again(tmp_path, capsys):
    """tools/defect_example.py on the fake COCO: build, train 1 epoch at 64 x 64, evaluate, predict --maps,
    export, figure and table; a second run replaces its own outputs (--overwrite on its run folder)."""
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("defect_example", REPO / "tools" / "defect_example.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    coco = write_fake_coco(tmp_path / "coco")
    argv = ["--coco-root", str(coco), "--data-root", str(tmp_path / "data"), "--class-name", "cat", "--epochs", "1",
            "--threads", "1", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    for _ in range(2):
        assert tool.main(argv) == 0
    table = (tmp_path / "results" / "coco-defects" / "example.md").read_text()
    assert "| image AUC, foreign_patch |" in table and "| pixel AUROC, residual maps |" in table
    assert (tmp_path / "results" / "coco-defects" / "example_maps.png").stat().st_size > 0
    assert (tmp_path / "runs" / "scorer.onnx").is_file()
    capsys.readouterr()
