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
