"""Grad-CAM wrapper and localisation metrics: known values on synthetic maps and masks."""
import pytest
import torch
import torch.nn as nn

from attn_ocgan.studies.localisation import (area_iou_ceiling, centre_prior, localisation_metrics, occlusion_drops, pointing_hits,
                                             thresholded_iou)
from attn_ocgan.errors import UserError
from attn_ocgan.models.attn_ocgan import AttnOCGAN, AttnOCGANConfig
from attn_ocgan.models.ocgan import OCGAN, OCGANConfig
from attn_ocgan.viz.gradcam import gradcam_maps, overlay

SMALL = dict(generator_width=8, classifier_width=8, visual_disc_width=4, latent_channels=8)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def _left_half_mask(batch=1, size=8):
    mask = torch.zeros(batch, 1, size, size, dtype=torch.bool)
    mask[..., : size // 2] = True
    return mask


def test_pointing_game_hits_misses_and_constant_maps():
    mask = _left_half_mask(3)
    maps = torch.zeros(3, 1, 8, 8)
    maps[0, 0, 2, 1] = 1.0  # peak inside the object
    maps[1, 0, 2, 6] = 1.0  # peak outside
    # maps[2] is constant: points nowhere
    assert pointing_hits(maps, mask).tolist() == [True, False, False]


def test_thresholded_iou_known_values():
    mask = _left_half_mask()
    assert thresholded_iou(mask.float(), mask, 0.5).item() == pytest.approx(1.0)
    top_half = torch.zeros(1, 1, 8, 8)
    top_half[..., :4, :] = 0.9
    assert thresholded_iou(top_half, mask, 0.5).item() == pytest.approx(1 / 3)  # 16 / 48
    assert thresholded_iou(top_half * 0.5, mask, 0.5).item() == 0.0  # nothing reaches 0.5 ...
    assert thresholded_iou(top_half * 0.5, mask, "mean").item() == pytest.approx(1 / 3)  # ... but its mean
    metrics = localisation_metrics(torch.cat([mask.float(), top_half]), torch.cat([mask, mask]))
    assert metrics["iou_at_0.5"] == pytest.approx((1 + 1 / 3) / 2)


def test_area_iou_ceiling_is_reached_by_the_best_map_of_that_share_and_no_better():
    masks = torch.cat([_left_half_mask(), torch.ones(1, 1, 8, 8, dtype=torch.bool)])  # object shares 0.5 and 1
    assert area_iou_ceiling(masks, 0.25) == pytest.approx((0.5 + 0.25) / 2)
    assert area_iou_ceiling(masks, 1.0) == pytest.approx(localisation_metrics(torch.ones(2, 1, 8, 8), masks)["iou_at_0.5"])
    quarter = torch.zeros(2, 1, 8, 8)
    quarter[..., :4, :4] = 1.0  # a share 0.25 placed inside both objects: exactly the ceiling
    assert localisation_metrics(quarter, masks)["iou_at_0.5"] == pytest.approx(area_iou_ceiling(masks, 0.25))


def test_centre_prior_peaks_in_the_centre():
    prior = centre_prior(2, 32)
    assert prior.shape == (2, 1, 32, 32) and prior.max() <= 1
    centre = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    centre[..., 12:20, 12:20] = True
    assert pointing_hits(prior[:1], centre).item()


@pytest.mark.parametrize("head", ["visual_discriminator", "classifier", "guide"])
def test_gradcam_maps_have_input_size_values_in_0_1_and_release_hooks(head):
    model = AttnOCGAN(AttnOCGANConfig(in_channels=3, guide_width=8, **SMALL)).eval()
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    maps = gradcam_maps(model, images, head=head, evidence="novel")
    assert maps.shape == (4, 1, 32, 32) and maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0
    assert _hooks(model) == 0
    tiles = overlay(images, maps)
    assert tiles.shape == (4, 3, 32, 32) and 0 <= tiles.min() and tiles.max() <= 1


def test_gradcam_follows_the_evidence_the_head_uses():
    """A critic that only looks at the top-left quadrant: Grad-CAM must light up there."""
    model = OCGAN(OCGANConfig(**SMALL)).eval()
    critic = model.visual_discriminator
    with torch.no_grad():
        for module in critic.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.abs_()  # monotone: more input brightness -> larger features
    images = -torch.ones(2, 1, 32, 32)
    images[:, :, :12, :12] = 1.0  # bright top-left patch, black elsewhere
    maps = gradcam_maps(model, images, "visual_discriminator", "normal")
    top_left, rest = maps[..., :16, :16].mean(), maps[..., 16:, 16:].mean()
    assert top_left > rest


def test_unexplainable_checkpoints_are_one_line_errors():
    model = OCGAN(OCGANConfig(**SMALL))
    with pytest.raises(UserError, match="no 'guide' head"):
        gradcam_maps(model, torch.zeros(1, 1, 32, 32), head="guide")
    model.visual_discriminator = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 1))
    with pytest.raises(UserError, match="no convolutional layer"):
        gradcam_maps(model, torch.zeros(1, 1, 32, 32))


class _LeftHalfEvidence(nn.Module):
    """A head whose logit is the sum of the left half of the image (where the fixture's objects lie)."""

    def forward(self, images):
        return images[..., : images.shape[-1] // 2].sum(dim=(1, 2, 3))


def test_occlusion_drops_find_the_evidence_on_the_object_and_not_on_the_background():
    images, masks = torch.ones(3, 1, 8, 8), _left_half_mask(3)
    object_drop, background_drop = occlusion_drops(_LeftHalfEvidence(), images, masks)
    assert object_drop == pytest.approx(100.0)  # every erased object pixel took 1 off the logit
    assert background_drop == pytest.approx(0.0)
    # with the mask on the other half, the same head's evidence is all in the "background"
    object_drop, background_drop = occlusion_drops(_LeftHalfEvidence(), images, masks.flip(-1))
    assert (object_drop, background_drop) == pytest.approx((0.0, 100.0))
