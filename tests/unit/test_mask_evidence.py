"""Mask diagnostics (engine/mask_diagnostics.py): per-image statistics as novelty evidence, template share, one pass."""
import numpy as np
import pytest
import torch
from torch import nn

from attn_ocgan.engine.mask_diagnostics import (mask_evidence_aucs, mask_pass, mask_statistics, per_image_mask_statistics,
                                               template_deviations)


class _MaskFromBrightness(nn.Module):
    """Masks that keep the bright pixels only (M = 1 where x > 0): their area follows the ink."""

    def forward(self, images):
        return images

    def attention_maps(self, images):
        return (images.mean(1, keepdim=True) > 0).float() * 0.9 + 0.05


class _ConstantMask(_MaskFromBrightness):
    def attention_maps(self, images):
        return torch.full_like(images[:, :1], 0.3)


def _images(ink_pixels: list[int]) -> torch.Tensor:
    images = -torch.ones(len(ink_pixels), 1, 4, 4)
    for index, n in enumerate(ink_pixels):
        images[index].view(-1)[:n] = 1.0
    return images


def test_per_image_statistics_known_values():
    statistics = per_image_mask_statistics(_MaskFromBrightness(), _images([4, 0]))
    np.testing.assert_allclose(statistics[0], [0.05 + 0.9 * 4 / 16, (4 * 0.45 + 12 * 0.45) / 16, 0.95])
    assert statistics[1][2] == 0.5  # no bright pixel: the on-bright statistic is neutral


def test_masks_that_differ_on_novel_images_separate_them_and_constant_masks_do_not():
    images, is_novel = _images([2, 3, 2, 8, 9, 10]), np.array([0, 0, 0, 1, 1, 1])  # novel images carry more ink
    assert mask_evidence_aucs(_MaskFromBrightness(), images, is_novel)["area"] == pytest.approx(1.0)
    assert mask_evidence_aucs(_ConstantMask(), images, is_novel) == pytest.approx(
        {"area": 0.5, "decisiveness": 0.5, "on_bright_pixels": 0.5, "reference_bright_share": 1.0})


def test_a_model_without_masks_gives_none():
    class _NoMasks(_MaskFromBrightness):
        def attention_maps(self, images):
            return None

    assert mask_evidence_aucs(_NoMasks(), _images([1, 2]), np.array([0, 1])) is None


def _ink_at(positions: list[list[int]]) -> torch.Tensor:
    images = -torch.ones(len(positions), 1, 4, 4)
    for index, pixels in enumerate(positions):
        images[index].view(-1)[pixels] = 1.0
    return images


def test_shape_deviation_sees_masks_that_move_where_their_area_does_not():
    """Normal images: ink in the top row; novel images: the same amount of ink in the bottom row.
    Masks that follow the ink keep the same area on both, so only their shape tells them apart."""
    normal_training = _ink_at([[0, 1], [1, 2], [2, 3], [0, 3]])
    images = _ink_at([[0, 1], [1, 2], [2, 3], [12, 13], [13, 14], [14, 15]])
    is_novel = np.array([0, 0, 0, 1, 1, 1])
    following = mask_evidence_aucs(_MaskFromBrightness(), images, is_novel, normal_training)
    assert following["area"] == pytest.approx(0.5)
    assert following["shape_deviation"] == pytest.approx(1.0)
    assert following["reference_image_deviation"] == pytest.approx(1.0)
    constant = mask_evidence_aucs(_ConstantMask(), images, is_novel, normal_training)
    assert constant["shape_deviation"] == pytest.approx(0.5)


def test_template_comes_from_the_normal_images_given():
    """The same test images scored against a template of the *novel* layout invert the AUC: the
    template is built from the images passed as normal, nothing else."""
    images, is_novel = _ink_at([[0, 1], [1, 2], [12, 13], [13, 14]]), np.array([0, 0, 1, 1])
    bottom_row_template = _ink_at([[12, 13], [14, 15]])
    mask_distance, image_distance = template_deviations(_MaskFromBrightness(), images, bottom_row_template)
    assert (mask_distance[:2] > mask_distance[2:]).all() and (image_distance[:2] > image_distance[2:]).all()
    assert mask_evidence_aucs(_MaskFromBrightness(), images, is_novel, bottom_row_template)["shape_deviation"] == 0.0


def test_template_share_is_one_for_a_fixed_mask_and_low_for_masks_that_follow_each_image():
    class _FixedLayout(_MaskFromBrightness):
        def attention_maps(self, images):  # the same top-row mask on every image
            masks = torch.full_like(images[:, :1], 0.1)
            masks[:, :, 0] = 0.9
            return masks

    images = _ink_at([[0, 5], [10, 15], [3, 12], [6, 9], [1, 14], [2, 7]])
    assert mask_statistics(_FixedLayout(), {"all": images})["all"]["template_share"] == pytest.approx(1.0)
    following = mask_statistics(_MaskFromBrightness(), {"all": images}, batch_size=4)["all"]["template_share"]
    assert following < 0.3  # ink at different places: most of the masks' variance is per image
    assert mask_statistics(_ConstantMask(), {"all": images})["all"]["template_share"] is None  # no variance at all


class _CountingMasks(_MaskFromBrightness):
    """Counts the images its attention maps are computed on."""

    def __init__(self):
        super().__init__()
        self.images_seen = 0

    def attention_maps(self, images):
        self.images_seen += len(images)
        return super().attention_maps(images)


def test_one_pass_gives_what_the_separate_measurements_give():
    normal_training = _ink_at([[0, 1], [1, 2], [2, 3], [0, 3]])
    images = _ink_at([[0, 1], [1, 2], [5], [12, 13], [13, 14, 15], [14, 15]])
    is_novel = np.array([0, 0, 0, 1, 1, 1])
    model = _CountingMasks()
    reference = mask_pass(model, normal_training, batch_size=3)
    combined = mask_pass(model, images, {"normal": is_novel == 0, "novel": is_novel == 1}, template=reference.template, batch_size=4)
    assert model.images_seen == len(normal_training) + len(images)  # each image's mask computed once
    separate = mask_statistics(model, {"normal": images[:3], "novel": images[3:]})
    for group in ("normal", "novel"):
        assert combined.statistics[group] == pytest.approx(separate[group])
    np.testing.assert_array_equal(combined.per_image, per_image_mask_statistics(model, images))
    mask_distance, image_distance = template_deviations(model, images, normal_training)
    np.testing.assert_array_equal(combined.deviations, np.stack([mask_distance, image_distance], 1))
    assert combined.statistics["novel"]["area"] != combined.statistics["normal"]["area"]  # the groups are apart


def test_evaluation_computes_each_images_mask_diagnostics_in_one_pass(monkeypatch):
    """evaluate_model: one mask pass over the normal training images (their mean mask is the
    template) and one over the test images, whose groups and template come from that pass."""
    from attn_ocgan.data.one_class import OneClassData
    from attn_ocgan.engine import evaluation
    from attn_ocgan.registry import create_model, resolve_model_config
    from tests.conftest import SMALL_MODEL_ARGS

    model = create_model("attn-ocgan", resolve_model_config("attn-ocgan", "mnist5k", SMALL_MODEL_ARGS["attn-ocgan"], 1, 32))
    images = torch.rand(14, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    data = OneClassData(train=images[:6], validation=images[:0], test=images[6:], test_is_novel=torch.tensor([0, 1] * 4),
                        test_classes=torch.tensor([0, 1] * 4), normal_class=0, class_names=("a", "b"))
    passes = []
    monkeypatch.setattr(evaluation, "mask_pass", lambda *args, **kwargs: passes.append((args, kwargs)) or mask_pass(*args, **kwargs))
    metrics = evaluation.evaluate_model(model, data)
    assert [len(args[1]) for args, _ in passes] == [6, 8]
    assert passes[1][1]["template"] is not None
    assert set(metrics["masks"]) == {"train_normal", "test_normal", "test_novel"}
    assert metrics["masks"]["test_normal"] == pytest.approx(mask_statistics(model, {"n": data.test[::2]})["n"])
    assert {"shape_deviation", "area"} <= set(metrics["mask_aucs"])
    reference = mask_evidence_aucs(model, data.test, data.test_is_novel.numpy(), data.train)
    assert metrics["mask_aucs"] == pytest.approx(reference)
