"""COCO32 builder on odd inputs: paths leaving their split folder, annotations without a box,
a missing images folder: skipped and counted, or one line, never a traceback or a half dataset."""
import json
import shutil

import pytest

from attn_ocgan.cli import main
from attn_ocgan.data.coco32_build import build_coco32, inside_split
from tests.unit.test_coco32 import _options, write_fake_coco


def _edit_annotations(coco_root, edit):
    path = coco_root / "annotations" / "instances_val2017.json"
    dataset = json.loads(path.read_text())
    edit(dataset)
    path.write_text(json.dumps(dataset))


def test_image_paths_outside_their_split_folder_are_skipped_and_counted(tmp_path):
    coco = write_fake_coco(tmp_path / "coco")
    (coco / "secret.png").write_bytes((coco / "val2017" / "000000000001.png").read_bytes())  # exists: not "missing"
    (tmp_path / "outside.png").write_bytes((coco / "val2017" / "000000000002.png").read_bytes())

    def escape(dataset):
        by_id = {image["id"]: image for image in dataset["images"]}
        by_id[1]["file_name"] = "../secret.png"  # a cat
        by_id[2]["file_name"] = str(tmp_path / "outside.png")  # a dog, absolute path
        by_id[3]["file_name"] = "sub/../../secret.png"  # a cat
    _edit_annotations(coco, escape)
    summary = build_coco32(_options(tmp_path, per_class=12, allow_fewer=True), progress=False)
    assert summary["classes"]["cat"]["skipped"]["image path outside its split folder"] == 2
    assert summary["classes"]["dog"]["skipped"]["image path outside its split folder"] == 1
    assert summary["classes"]["cat"]["eligible"] == 10 and summary["classes"]["dog"]["eligible"] == 11
    sources = (tmp_path / "coco32" / "manifest.csv").read_text()
    assert "secret" not in sources and "outside" not in sources


def test_inside_split():
    assert inside_split("000000000139.jpg") and inside_split("sub/a.jpg") and inside_split("sub/../a.jpg")
    for name in ("../a.jpg", "sub/../../a.jpg", "/etc/passwd", "..", ".", "", None, 3):
        assert not inside_split(name), name


def test_annotations_without_bbox_or_segmentation_are_skipped_and_counted(tmp_path):
    coco = write_fake_coco(tmp_path / "coco")

    def damage(dataset):
        cats = [a for a in dataset["annotations"] if a["category_id"] == 17]
        del cats[0]["bbox"]
        cats[1]["bbox"] = [20, 30, 60]
        cats[2]["bbox"] = "20 30 60 60"
        del cats[3]["segmentation"]
    _edit_annotations(coco, damage)
    summary = build_coco32(_options(tmp_path, per_class=12, allow_fewer=True), progress=False)
    skipped = summary["classes"]["cat"]["skipped"]
    assert skipped["missing or malformed bbox"] == 3 and skipped["missing segmentation"] == 1
    assert summary["classes"]["cat"]["eligible"] == 8 and summary["classes"]["dog"]["eligible"] == 12


@pytest.mark.parametrize("allow_fewer", [False, True])
def test_a_missing_images_folder_is_one_line_and_nothing_written(tmp_path, capsys, allow_fewer):
    coco = write_fake_coco(tmp_path / "coco")
    shutil.rmtree(coco / "val2017")
    arguments = ["--coco-root", str(coco), "--splits", "val2017", "--classes", "cat,dog", "--per-class", "10",
                 "--test-per-class", "2", "--quiet", "--out", str(tmp_path / "out")]
    assert main(["build-coco32", *arguments, *(["--allow-fewer"] if allow_fewer else [])]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: COCO images folder")
    assert str(coco / "val2017") in error and "cocodataset.org" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]  # no output, no temporary folder


def test_nothing_to_crop_under_allow_fewer_is_a_user_error_not_an_empty_dataset(tmp_path, capsys):
    coco = write_fake_coco(tmp_path / "coco")
    for image in (coco / "val2017").iterdir():
        image.write_bytes(b"not a png")  # every image unreadable
    arguments = ["--coco-root", str(coco), "--splits", "val2017", "--classes", "cat,dog", "--per-class", "10",
                 "--test-per-class", "2", "--quiet", "--allow-fewer", "--out", str(tmp_path / "out")]
    assert main(["build-coco32", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.splitlines()[-1].startswith("error: no object could be cropped")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]
