"""--outlier-exposure: another dataset's images as the guide's negatives; the evaluated dataset is refused."""
import pytest
import torch
from PIL import Image

from attn_ocgan.cli import main
from attn_ocgan.config import DataConfig, TrainConfig
from attn_ocgan.data.outliers import load_outlier_images, shared_class_names
from attn_ocgan.errors import UserError
from attn_ocgan.models.attn_ocgan import AttnOCGAN, AttnOCGANAlgorithm, AttnOCGANConfig
from tests.conftest import REPO


def colour_folder(root, colour=(250, 0, 0)):
    for split in ("train", "test"):
        (root / split / "red").mkdir(parents=True)
        for index in range(4):
            Image.new("RGB", (32, 32), colour).save(root / split / "red" / f"{index}.png")
    return root


@pytest.mark.parametrize("spec", ["mnist5k", "mnist"])
def test_the_evaluated_dataset_is_refused(spec):
    with pytest.raises(UserError, match="is the dataset being evaluated"):
        load_outlier_images(spec, DataConfig(name="mnist5k"), in_channels=1)


def test_the_same_folder_tree_is_refused(tmp_path):
    folder = colour_folder(tmp_path / "red")
    with pytest.raises(UserError, match="is the dataset being evaluated"):
        load_outlier_images(f"folder:{folder}", DataConfig(name="folder", root=str(folder)), in_channels=3)


def test_another_dataset_with_a_test_class_is_refused(tmp_path):
    """A copy of the evaluated classes under another path or name (the CIFAR-10 JPEG folder for
    cifar10, COCO32 for CIFAR-10) would leak novel test classes into training."""
    evaluated = colour_folder(tmp_path / "evaluated")
    (evaluated / "train" / "blue").mkdir(), (evaluated / "test" / "blue").mkdir()
    for split in ("train", "test"):
        Image.new("RGB", (32, 32), (0, 0, 250)).save(evaluated / split / "blue" / "0.png")
    copy = colour_folder(tmp_path / "copy")
    with pytest.raises(UserError, match="shares the classes red with the evaluated dataset"):
        load_outlier_images(f"folder:{copy}", DataConfig(name="folder", root=str(evaluated)), in_channels=3)


def test_class_names_are_compared_across_spellings():
    cifar = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert shared_class_names(("Airplane", "car", "bowl", "person"), cifar) == ["Airplane", "car"]
    assert shared_class_names(("0 - zero", "1 - one"), tuple("0123456789")) == ["0 - zero", "1 - one"]
    assert shared_class_names(("T-shirt/top", "Trouser", "Sneaker"), tuple("0123456789")) == []


def test_rgb_outliers_become_grey_for_a_grey_dataset(tmp_path):
    images = load_outlier_images(f"folder:{colour_folder(tmp_path)}", DataConfig(name="mnist5k"), in_channels=1)
    assert images.shape == (4, 1, 32, 32)
    torch.testing.assert_close(images, torch.full_like(images, round(250 / 3) / 127.5 - 1))


def test_outlier_images_replace_the_decodes_among_the_pseudo_anomalies():
    config = AttnOCGANConfig(generator_width=8, classifier_width=8, visual_disc_width=4, guide_width=8, corruption_fraction=0.5,
                             guide_task="pseudo_anomaly", guide_evidence_score=False)
    algorithm = AttnOCGANAlgorithm(AttnOCGAN(config), config, TrainConfig())
    outliers = torch.full((5, 1, 32, 32), 0.25)
    algorithm.set_outlier_images(outliers)
    negatives = algorithm.pseudo_anomalies(torch.rand(8, 1, 32, 32) * 2 - 1)
    assert negatives.shape == (8, 1, 32, 32)
    assert torch.all(negatives[4:] == 0.25) and not torch.any(negatives[:4] == 0.25)


def test_cli_records_the_setting_and_refuses_bad_combinations(tmp_path, capsys):
    small = ["--model-arg", "generator_width=8", "--model-arg", "classifier_width=8", "--model-arg", "visual_disc_width=4",
             "--model-arg", "guide_width=8", "--epochs", "1", "--normal-class", "1"]
    first_recipe = ["--config", str(REPO / "configs" / "attention" / "first-recipe.yaml")]  # the guide that takes negatives
    folder = colour_folder(tmp_path / "red")
    out = tmp_path / "run"
    assert main(["train", "--outlier-exposure", f"folder:{folder}", "--out", str(out), *small, *first_recipe]) == 0
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert saved["config"]["data"]["outlier_exposure"] == f"folder:{folder}"
    capsys.readouterr()
    for argv, message in ((["--outlier-exposure", "mnist5k", *first_recipe], "is the dataset being evaluated"),
                          (["--outlier-exposure", f"folder:{folder}", "--model-arg", "attention=false"], "trains on auxiliary negatives (attn-ocgan with attention on"),
                          (["--outlier-exposure", f"folder:{folder}", "--model", "ocgan"], "trains on auxiliary negatives (attn-ocgan with attention on")):
        bad = tmp_path / "bad"
        options = small if "ocgan" not in argv else small[:6] + small[8:]  # vanilla OCGAN has no guide_width
        assert main(["train", *argv, "--out", str(bad), *options]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not bad.exists()  # nothing half-written
