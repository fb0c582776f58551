"""The guide tasks and mask terms that make a mask choose: the rotation guide's keep-and-erase game,
the area barrier, total variation, CutPaste pseudo-anomalies (issue 27, item 2)."""
import math

import pytest
import torch

from attn_ocgan.config import TrainConfig
from attn_ocgan.errors import UserError
from attn_ocgan.models.attn_ocgan import FIRST_RECIPE, AttnOCGAN, AttnOCGANAlgorithm, AttnOCGANConfig
from attn_ocgan.data.pseudo_anomalies import cut_paste
from attn_ocgan.models.attn_ocgan.loss import (MaskRegularisers, RotationAttentionLoss, extended_log_barrier,
                                              pasted_region_loss, total_variation)
from attn_ocgan.models.components.rotations import quarter_turn, random_rotations, rotate
from attn_ocgan.models.components import ConvCritic
from tests.unit.test_attention import SMALL, images


def rotation_config(**overrides) -> AttnOCGANConfig:
    """The rotation guide's keep-and-erase game on top of the first recipe's other terms."""
    return AttnOCGANConfig(**{**SMALL, **FIRST_RECIPE, "guide_task": "rotation", "mask_complement_weight": 1.0, **overrides})


def test_rotation_labels_and_their_inverse():
    arrow = torch.zeros(1, 1, 4, 4)
    arrow[0, 0, 0, 3] = 1.0  # top right corner
    turned = rotate(arrow.expand(4, -1, -1, -1), torch.arange(4))
    corners = [tuple(torch.nonzero(image[0]).flatten().tolist()) for image in turned]
    assert corners == [(0, 3), (0, 0), (3, 0), (3, 3)]  # counter-clockwise quarter turns
    x = images(8)
    rotated, labels = random_rotations(x, torch.Generator().manual_seed(0))
    assert set(labels.tolist()) <= {0, 1, 2, 3} and len(set(labels.tolist())) > 1
    torch.testing.assert_close(rotate(rotated, (4 - labels) % 4), x)  # the inverse turn restores every image
    for turns in range(-1, 5):  # the exporter-friendly quarter turn is torch.rot90
        assert torch.equal(quarter_turn(x, turns), torch.rot90(x, turns, dims=(2, 3)))


def test_keep_and_erase_train_the_attention_generator_and_guide_not_the_first_gan():
    """Before the GANs start (pretrain epochs) one step of the rotation game changes every
    parameter of the attention generator and the guide, and none of the first GAN."""
    config = rotation_config(pretrain_attention_epochs=1)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logs = algorithm.train_step(images(8), epoch=0)
    assert {"attention/rotation_kept", "attention/erased_confusion", "attention/area_prior"} <= set(logs)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    for prefix in ("attention.", "guide."):
        owned = {name for name in before if name.startswith(prefix)}
        assert owned and owned <= changed, f"{prefix} parameters without a gradient: {sorted(owned - changed)[:3]}"
    assert not {name for name in changed if name.startswith(("encoder.", "decoder.", "masked_gan."))}


def test_erase_term_pushes_the_guide_to_chance_on_the_erased_part():
    """A's erase term is the cross-entropy against the uniform distribution: at chance it is log 4,
    its minimum; confident logits cost more."""
    guide = ConvCritic(1, 4, 32, outputs=4)
    loss = RotationAttentionLoss(1.0, 1.0, MaskRegularisers(0.0, 0.5))
    x, labels = images(4), torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        guide.head.weight.zero_(), guide.head.bias.zero_()  # uniform logits
    terms = loss(guide, x, labels, torch.full((4, 1, 32, 32), 0.5))
    assert terms["erased_confusion"].item() == pytest.approx(math.log(4))
    assert loss.adversarial and not RotationAttentionLoss(1.0, 0.0, MaskRegularisers(0.0, 0.5)).adversarial


def test_area_barrier_brings_an_over_large_mask_below_its_target():
    """Against a term that wants to keep every pixel (-mean M, as a keep loss without the barrier),
    the barrier brings the masks from area .88 to just below the target and holds them there
    (at slope t the balance is 1/t below it); the quadratic pull would sit at the target from both sides."""
    logits = torch.full((4, 1, 8, 8), 2.0, requires_grad=True)  # sigmoid(2) = 0.88
    regularisers = MaskRegularisers(area_weight=1.0, area_target=0.3, area_constraint="barrier", barrier_t=25.0)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(400):
        masks = torch.sigmoid(logits)
        total, terms = regularisers(masks)
        optimizer.zero_grad()
        (total - masks.mean()).backward()
        optimizer.step()
    area = torch.sigmoid(logits).flatten(1).mean(1)
    assert (area <= 0.3).all() and (area > 0.2).all(), area


def test_pasted_region_loss_supervises_the_pasted_square_only():
    regions = torch.zeros(2, 1, 8, 8)
    regions[:, :, :2, :2] = 1.0
    marked = regions * 0.999999 + (1 - regions) * torch.rand(2, 1, 8, 8)  # anything outside the square
    assert pasted_region_loss(marked, regions).item() == pytest.approx(0.0, abs=1e-5)
    assert pasted_region_loss(torch.full_like(regions, 0.5), regions).item() == pytest.approx(math.log(2))
    # under the area barrier, the term moves a free mask's mass onto the square rather than everywhere
    logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    regularisers = MaskRegularisers(area_weight=1.0, area_target=0.3, area_constraint="barrier")
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(300):
        masks = torch.sigmoid(logits)
        loss = pasted_region_loss(masks, regions) + regularisers(masks)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    masks = torch.sigmoid(logits).detach()
    assert masks[regions.bool()].min() > 0.9 and masks[~regions.bool()].max() < 0.3 and masks.mean() <= 0.3


def test_the_pasted_region_term_trains_the_attention_generator_alone():
    config = rotation_config(pretrain_attention_epochs=1, mask_region_weight=1.0)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logs = algorithm.train_step(images(8), epoch=0)
    assert logs["attention/mask_region"] > 0 and 0 < logs["attention/mask_on_pasted_square"] < 1
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert not {name for name in changed if name.startswith(("encoder.", "decoder.", "masked_gan."))}
    # the term itself reaches the attention generator and nothing else
    pasted_features, regions = algorithm.pasted_copies(images(8))
    model.zero_grad()
    pasted_region_loss(model.attention(pasted_features), regions).backward()
    with_gradient = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_gradient and all(name.startswith("attention.") for name in with_gradient)


def test_extended_log_barrier_is_continuous_and_steep_outside():
    t = 5.0
    threshold = torch.tensor(-1.0 / t ** 2)
    assert extended_log_barrier(threshold - 1e-6, t).item() == pytest.approx(extended_log_barrier(threshold + 1e-6, t).item(), abs=1e-4)
    assert extended_log_barrier(torch.tensor(0.2), t) > extended_log_barrier(torch.tensor(-0.2), t) + 0.9


def test_total_variation_is_zero_for_a_constant_mask_and_counts_edges():
    assert total_variation(torch.full((1, 1, 4, 4), 0.3)).item() == 0.0
    half = torch.zeros(1, 1, 4, 4)
    half[..., 2:] = 1.0
    assert total_variation(half).item() == pytest.approx(4 / 12)  # 4 of 12 horizontal neighbour pairs differ


def test_cut_paste_copies_a_patch_of_the_same_image_and_marks_where():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    pasted, regions = cut_paste(x, torch.Generator().manual_seed(3))
    for image, original, region in zip(pasted, x, regions):
        inside = region[0].bool()
        assert inside.any() and torch.equal(image[0][~inside], original[0][~inside])  # only the region changes
        patch = image[0][inside]
        side = int(math.isqrt(len(patch)))
        windows = original[0].unfold(0, side, 1).unfold(1, side, 1).reshape(-1, side * side)
        assert (windows == patch.reshape(1, -1)).all(1).any()  # the region holds a patch of the same image


def test_rotation_model_trains_every_parameter_and_grad_cam_sees_one_logit():
    from attn_ocgan.viz.gradcam import gradcam_maps

    config = rotation_config(corruption="cutpaste", mask_area_constraint="barrier", mask_area_target=0.4, mask_tv_weight=0.1)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logs = algorithm.train_step(images(8), epoch=30)
    assert all(math.isfinite(v) for v in logs.values())
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert not unchanged, unchanged[:5]
    maps = gradcam_maps(model.eval(), images(2), head="guide")
    assert maps.shape == (2, 1, 32, 32)


def test_unknown_choices_are_one_line_errors():
    with pytest.raises(UserError, match="guide_task='jigsaw' must be one of pseudo_anomaly, rotation"):
        AttnOCGANConfig(guide_task="jigsaw")
    with pytest.raises(UserError, match="mask_area_constraint"):
        AttnOCGANConfig(mask_area_constraint="hard")
