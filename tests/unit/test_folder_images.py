"""Folder datasets: high-bit-depth images scaled to 8 bits, unreadable files skipped and counted,
trees without class folders or readable images refused with one line."""
import io

import numpy as np
import pytest
from PIL import Image

from attn_ocgan.data import load_splits
from attn_ocgan.data.datasets import decode_image
from attn_ocgan.errors import UserError


def _tree(root, image, name="0.tif", classes=("a", "b")):
    """ROOT/{train,test}/<class>/NAME holding ``image`` for every class."""
    for split in ("train", "test"):
        for class_name in classes:
            (root / split / class_name).mkdir(parents=True, exist_ok=True)
            image.save(root / split / class_name / name)
    return root


def _square(values, mode):
    """A square image of PIL ``mode`` whose every row holds ``values``."""
    dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4", "F": "<f4"}[mode]
    rows = np.asarray([values * 2] * 8, dtype=dtype)  # 8x8: the smallest --size
    return Image.frombytes(mode, (8, 8), rows.tobytes())


@pytest.mark.parametrize("mode, suffix, values, expected", [
    ("I;16", ".png", [0, 257, 32896, 65535], [0, 1, 128, 255]),
    ("I;16B", ".tif", [0, 257, 32896, 65535], [0, 1, 128, 255]),
    ("I", ".tif", [0, 257, 32896, 65535], [0, 1, 128, 255]),
    ("I", ".tif", [0, 1, 128, 255], [0, 1, 128, 255]),  # values within 0..255: already 8-bit
    ("F", ".tif", [0.0, 0.25, 0.5, 1.0], [0, 64, 128, 255]),  # [0, 1] floats
    ("F", ".tif", [-3.0, 1.5, 128.0, 300.0], [0, 2, 128, 255]),  # brighter: clipped to 0..255
])
def test_high_bit_depth_images_are_scaled_not_clipped_to_white(tmp_path, mode, suffix, values, expected):
    image = _square(values, mode)
    path = tmp_path / f"image{suffix}"
    image.save(path)
    with Image.open(path) as reread:
        assert reread.mode == mode  # the file really holds that mode
    assert np.asarray(decode_image(path, "L")).tolist() == [expected * 2] * 8
    # through the folder dataset (decoded to RGB, no resize): every channel holds the scaled values
    root = _tree(tmp_path / "tree", image, name=f"0{suffix}")
    pixels = load_splits("folder", str(root), size=8).train_images[0]
    assert pixels.tolist() == [[expected * 2] * 8] * 3


def test_eight_bit_images_are_unchanged(tmp_path):
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    path = tmp_path / "rgb.png"
    Image.fromarray(pixels).save(path)
    assert np.array_equal(np.asarray(decode_image(path, "RGB")), pixels)
    assert decode_image(path, "L").mode == "L"


def test_unreadable_images_are_skipped_counted_and_named(tmp_path, capsys):
    root = _tree(tmp_path, Image.new("RGB", (8, 8), (10, 20, 30)), name="good.png")
    (root / "train" / "a" / "garbage.png").write_bytes(b"not an image at all")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 0, 0)).save(jpeg, format="JPEG")
    (root / "train" / "b" / "truncated.jpg").write_bytes(jpeg.getvalue()[:200])
    splits = load_splits("folder", str(root), size=8)
    assert splits.train_images.shape == (2, 3, 8, 8) and splits.train_labels.tolist() == [0, 1]
    assert splits.train_images[:, 0].unique().tolist() == [10]  # only the good images
    assert splits.test_images.shape == (2, 3, 8, 8)
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]  # tqdm writes there too
    assert len(warning) == 1 and warning[0].startswith("warning: skipped 2 unreadable image(s)")
    assert "garbage.png" in warning[0] and "truncated.jpg" in warning[0] and str(root / "train") in warning[0]


def test_a_split_with_no_readable_image_is_a_user_error(tmp_path):
    root = _tree(tmp_path, Image.new("RGB", (8, 8)), name="good.png")
    for class_name in ("a", "b"):
        (root / "test" / class_name / "good.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match="no readable image") as caught:
        load_splits("folder", str(root), size=8)
    message = str(caught.value)
    assert "\n" not in message and str(root / "test") in message and "replace or remove" in message


def test_train_or_test_without_class_folders_is_a_user_error(tmp_path):
    _tree(tmp_path / "flat", Image.new("RGB", (8, 8)), name="good.png")
    for path in (tmp_path / "flat" / "test").rglob("*.png"):
        path.rename(tmp_path / "flat" / "test" / f"{path.parent.name}.png")  # images straight in test/
    for path in (tmp_path / "flat" / "test").iterdir():
        if path.is_dir():
            path.rmdir()
    with pytest.raises(UserError, match="has no class sub-folders") as caught:
        load_splits("folder", str(tmp_path / "flat"), size=8)
    assert "\n" not in str(caught.value) and str(tmp_path / "flat" / "test") in str(caught.value)

    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "test" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="no image files") as caught:
        load_splits("folder", str(tmp_path / "empty"), size=8)
    assert "\n" not in str(caught.value) and "a" in str(caught.value)
