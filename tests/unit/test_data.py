import numpy as np
import pytest
import torch
from PIL import Image

from attn_ocgan.config import DataConfig
from attn_ocgan.data import load_one_class, load_splits, make_one_class
from attn_ocgan.data.datasets import dataset_class_names
from attn_ocgan.data.datasets import MNIST5K_TEST_PER_CLASS
from attn_ocgan.errors import UserError

from ..conftest import shared_data_root


def test_mnist5k_is_embedded_and_split_per_class():
    splits = load_splits("mnist5k", None)
    assert splits.train_images.shape == (4000, 1, 32, 32) and splits.test_images.shape == (1000, 1, 32, 32)
    assert torch.bincount(splits.test_labels).tolist() == [MNIST5K_TEST_PER_CLASS] * 10
    assert splits.train_images.dtype == torch.uint8
    # digits are padded 28 -> 32: the 2-pixel border is empty
    assert splits.train_images[..., :2, :].max() == 0 and splits.train_images[..., -2:].max() == 0
    # the split is disjoint: no test digit is also a training digit
    train_set = {bytes(x.numpy()) for x in splits.train_images}
    assert not any(bytes(x.numpy()) in train_set for x in splits.test_images)


def test_one_class_protocol_2():
    data = make_one_class(load_splits("mnist5k", None), normal_class=3, val_fraction=0.1)
    assert len(data.train) + len(data.validation) == 400 and len(data.validation) == 40
    assert data.train.min() >= -1 and data.train.max() <= 1 and data.train.dtype == torch.float32
    assert len(data.test) == 1000  # the full test split
    assert data.test_is_novel.sum() == 900
    assert torch.equal(data.test_is_novel, (data.test_classes != 3).long())


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'svhn'; known datasets: mnist5k"):
        load_splits("svhn", None)
    with pytest.raises(UserError, match="out of range"):
        make_one_class(load_splits("mnist5k", None), normal_class=10)
    with pytest.raises(UserError, match="does not exist"):
        load_splits("mnist", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="MNIST not found"):
        load_splits("mnist", str(tmp_path))
    with pytest.raises(UserError, match="folder dataset needs"):
        load_splits("folder", str(tmp_path))
    with pytest.raises(UserError, match="--variant masked chooses COCO32's crops"):
        load_splits("mnist5k", None, variant="masked")
    with pytest.raises(UserError, match="does not exist"):  # the names without the data: the loader's error
        dataset_class_names("folder", str(tmp_path / "nowhere"))


def test_class_names_without_decoding_match_the_loaders(tmp_path):
    """--status names the classes from the dataset's lists and folders, not by loading every image."""
    import pickle

    assert dataset_class_names("mnist5k", None) == load_splits("mnist5k", None).class_names
    assert dataset_class_names("mnist", str(tmp_path))[:2] == ("0 - zero", "1 - one")  # torchvision's own list
    (tmp_path / "cifar-10-batches-py").mkdir()
    with open(tmp_path / "cifar-10-batches-py" / "batches.meta", "wb") as meta:
        pickle.dump({"label_names": ["airplane", "automobile"], "num_vis": 3072}, meta)
    assert dataset_class_names("cifar10", str(tmp_path)) == ("airplane", "automobile")


def test_a_class_the_dataset_lacks_is_refused_before_any_image_is_decoded(tmp_path, monkeypatch):
    import attn_ocgan.data as data

    for split in ("train", "test"):
        for name in ("good", "scratch"):
            (tmp_path / split / name).mkdir(parents=True)
    monkeypatch.setattr(data, "load_splits", lambda *a, **k: pytest.fail("the images were decoded first"))
    with pytest.raises(UserError, match=r"normal class 12 is out of range; this dataset has classes 0-1 \(good, scratch\)"):
        load_one_class(DataConfig(name="folder", root=str(tmp_path), normal_class=12))
    with pytest.raises(UserError, match="'dent' is not a class of this dataset"):
        load_one_class(DataConfig(name="folder", root=str(tmp_path), normal_class="dent"))


def test_folder_dataset_decodes_and_resizes(tmp_path):
    colours = {"cats": (250, 0, 0), "dogs": (0, 0, 250)}
    for split, count in (("train", 3), ("test", 2)):
        for name, colour in colours.items():
            (tmp_path / split / name).mkdir(parents=True)
            for index in range(count):
                Image.new("RGB", (40, 40), colour).save(tmp_path / split / name / f"{index}.png")
    splits = load_splits("folder", str(tmp_path), size=16)
    assert splits.class_names == ("cats", "dogs") == dataset_class_names("folder", str(tmp_path))
    assert splits.train_images.shape == (6, 3, 16, 16) and splits.test_images.shape == (4, 3, 16, 16)
    data = make_one_class(splits, 1)
    assert len(data.train) == 3
    assert torch.allclose(data.train[:, 2], torch.full_like(data.train[:, 2], 250 / 127.5 - 1))  # blue channel of dogs
    assert data.test_is_novel.tolist() == [0 if c == 1 else 1 for c in splits.test_labels.tolist()]
    # a stored config whose data root is elsewhere (a checkpoint from another machine): root replaces it
    stored = DataConfig(name="folder", root=str(tmp_path / "moved"), normal_class=1, size=16)
    with pytest.raises(UserError):
        load_one_class(stored)
    assert torch.equal(load_one_class(stored, str(tmp_path)).train, data.train)


@pytest.mark.skipif(shared_data_root() is None or not (shared_data_root() / "MNIST").is_dir(), reason="../shared/data/MNIST absent")
def test_real_mnist_counts():
    splits = load_splits("mnist", str(shared_data_root()))
    assert splits.class_names == dataset_class_names("mnist", str(shared_data_root()))
    assert splits.train_images.shape == (60000, 1, 32, 32) and len(splits.test_labels) == 10000
    assert torch.bincount(splits.train_labels)[1] == 6742


@pytest.mark.skipif(shared_data_root() is None or not (shared_data_root() / "cifar10-jpeg").is_dir(), reason="../shared/data/cifar10-jpeg absent")
def test_real_cifar_jpeg_folder_layout():
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(shared_data_root() / "cifar10-jpeg" / "test"))
    assert folder.classes[:3] == ["airplane", "automobile", "bird"] and len(folder) == 10000
    assert np.asarray(folder.loader(folder.samples[0][0])).shape == (32, 32, 3)
