"""Attention OCGAN: masks, temperature, attention off = vanilla, masked GAN input, gradients, score statistics."""

import pytest
import torch

from attn_ocgan.config import TrainConfig
from attn_ocgan.layers.attention import apply_mask, masks_from_logits
from attn_ocgan.models.attn_ocgan import FIRST_RECIPE, AttnOCGAN, AttnOCGANAlgorithm, AttnOCGANConfig
from attn_ocgan.data.pseudo_anomalies import patch_shuffle
from attn_ocgan.models.attn_ocgan.loss import AttentionLoss, MaskRegularisers
from attn_ocgan.models.ocgan import OCGAN, OCGANAlgorithm
from attn_ocgan.registry import create_model

SMALL = dict(generator_width=8, classifier_width=8, visual_disc_width=4, guide_width=8, latent_channels=8)


def small_config(**overrides) -> AttnOCGANConfig:
    """A narrow model with the first recipe (pseudo-anomaly guide, quadratic area prior), which this
    file tests; the rotation guide, today's default, is tested in test_attention_guides.py."""
    return AttnOCGANConfig(**{**SMALL, **FIRST_RECIPE, **overrides})


def images(n=16, channels=1, seed=0):
    return torch.rand(n, channels, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3])
def test_masks_are_in_0_1_with_one_channel_at_image_size(channels):
    model = AttnOCGAN(small_config(in_channels=channels)).eval()
    masks = model.attention_maps(images(5, channels) * 20)
    assert masks.shape == (5, 1, 32, 32)
    assert masks.min() > 0 and masks.max() < 1


def test_lower_temperature_gives_more_decisive_masks():
    logits = torch.linspace(-3, 3, 101)
    sharp, soft = masks_from_logits(logits, 0.5), masks_from_logits(logits, 1.0)
    assert ((sharp - 0.5).abs() >= (soft - 0.5).abs()).all()
    assert (sharp - 0.5).abs().mean() > (soft - 0.5).abs().mean() + 0.05
    # and the model's temperature is the one applied to its logits
    model = AttnOCGAN(small_config(temperature=0.25)).eval()
    x = images(4)
    with torch.no_grad():
        features = model.encoder.eval().features.forward_features(x)
        expected = torch.sigmoid(model.attention.logits(features) / 0.25)
        torch.testing.assert_close(model.attention_maps(x), expected)


def test_apply_mask_keeps_masked_pixels_and_blacks_out_the_rest():
    x = images(2)
    ones, zeros = torch.ones(2, 1, 32, 32), torch.zeros(2, 1, 32, 32)
    torch.testing.assert_close(apply_mask(x, ones), x)
    torch.testing.assert_close(apply_mask(x, zeros), -torch.ones_like(x))


def test_attention_off_reproduces_vanilla_ocgan():
    torch.manual_seed(7)
    vanilla = OCGAN(small_config())
    torch.manual_seed(7)
    attention_off = AttnOCGAN(small_config(attention=False))
    assert vanilla.state_dict().keys() == attention_off.state_dict().keys()
    assert all(torch.equal(v, attention_off.state_dict()[k]) for k, v in vanilla.state_dict().items())
    runs = {}
    for name, model, algorithm_class in (("vanilla", vanilla, OCGANAlgorithm), ("off", attention_off, AttnOCGANAlgorithm)):
        algorithm = algorithm_class(model, small_config(mining_start_epoch=0, attention=False), TrainConfig())
        torch.manual_seed(11)
        for step in range(3):
            algorithm.train_step(images(16, seed=step), epoch=1)
        runs[name] = model.eval().score(images(8, seed=99))
    torch.testing.assert_close(runs["vanilla"], runs["off"], rtol=0, atol=0)


def test_masked_gan_is_fed_x_times_m():
    config = small_config(mask_warmup_epochs=1)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    seen = []
    original = algorithm.masked.train_step
    algorithm.masked.train_step = lambda batch, epoch: seen.append(batch.clone()) or original(batch, epoch)
    x = images(16)
    algorithm.train_step(x, epoch=0)
    assert seen == []  # warm-up epoch: the masked GAN waits
    algorithm.train_step(x, epoch=1)
    assert len(seen) == 1 and int(model.masked_gan_steps) == 1
    model.eval()
    with torch.no_grad():
        expected = apply_mask(x, model.attention_maps(x))
    torch.testing.assert_close(seen[0], expected)
    assert not torch.allclose(seen[0], x)  # the masks really removed something


@pytest.mark.parametrize("area_weight", [0.0, 1.0])
def test_guide_loss_reaches_every_attention_parameter(area_weight):
    model = AttnOCGAN(small_config()).train()
    loss = AttentionLoss(1.0, 0.0, MaskRegularisers(area_weight, 0.3))
    x, anomalous = images(8), patch_shuffle(images(8), 8)
    both = torch.cat([x, anomalous])
    terms = loss(model.guide, both, torch.tensor([1.0] * 8 + [0.0] * 8), model.attention_maps(both))
    terms["guide_masked"].backward()  # the classifier's masked term alone must reach the attention generator
    for name, parameter in model.attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.encoder.parameters())  # the first GAN is left alone


def one_step(epoch: int, **overrides):
    """(model, logs, names of the top-level networks whose weights or statistics the step changed)."""
    config = small_config(**overrides)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = algorithm.train_step(images(16), epoch=epoch)
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])}
    return model, logs, changed


def test_a_full_step_trains_every_network_and_stays_finite():
    _, logs, changed = one_step(0, mask_warmup_epochs=0, mining_start_epoch=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert {"encoder", "decoder", "classifier", "latent_discriminator", "visual_discriminator",
            "attention", "guide", "masked_gan"} <= changed


def test_the_guide_trains_the_attention_generator_in_a_training_step():
    """Through the algorithm's own step (no area prior): the guide's loss is what moves the mask
    weights; with the guide off too, no weight of either network moves (BatchNorm statistics do)."""
    def trained_networks(**overrides):
        config = small_config(mask_area_weight=0.0, **overrides)
        model = AttnOCGAN(config)
        before = {k: v.clone() for k, v in model.named_parameters()}
        AttnOCGANAlgorithm(model, config, TrainConfig()).train_step(images(16), epoch=0)
        return {k.split(".")[0] for k, v in model.named_parameters() if not torch.equal(v, before[k])}

    assert {"attention", "guide"} <= trained_networks()
    assert not {"attention", "guide"} & trained_networks(guide_weight=0.0, guide_evidence_score=False)


def test_score_statistics_come_from_training_images_only():
    config = small_config()
    model = AttnOCGAN(config).eval()
    train, test = images(40, seed=1), images(40, seed=2) * 0.2
    model.fit_score_statistics(train)
    with torch.no_grad():
        components = model.score_components(train)
    torch.testing.assert_close(model.score_mean, components.mean(0))
    torch.testing.assert_close(model.score_std, components.std(0))
    with torch.no_grad():
        assert not torch.allclose(model.score_components(test).mean(0), model.score_mean)
    # once the masked GAN has trained, the score is the weighted sum of the normalised errors
    model.masked_gan_steps.fill_(1)
    with torch.no_grad():
        z = (model.score_components(test) - model.score_mean) / model.score_std
        torch.testing.assert_close(model.score(test), 0.5 * z[:, 0] + 0.5 * z[:, 1])


@pytest.mark.parametrize("masked_gan_steps", [0, 1])
def test_one_scoring_pass_gives_the_scores_and_columns_of_two(masked_gan_steps):
    """evaluate scores once: the combined score from the same components equals model.score."""
    from attn_ocgan.engine.evaluation import compute_scores, scores_and_columns

    model = AttnOCGAN(small_config(masked_score_weight=0.3)).eval()
    model.fit_score_statistics(images(20, seed=1))
    model.masked_gan_steps.fill_(masked_gan_steps)
    x = images(10, seed=2)
    scores, columns = scores_and_columns(model, x, batch_size=4)
    expected = compute_scores(model, x, batch_size=4)
    assert scores.tobytes() == expected.tobytes()
    with torch.inference_mode():
        raw = model.score_components(x).double().numpy()
    want = {"first_gan": raw[:, 0], "masked_gan": raw[:, 1]} if masked_gan_steps else {"score": expected}
    assert columns.keys() == want.keys() == ({"first_gan", "masked_gan"} if masked_gan_steps else {"score"})
    assert all(columns[name].tobytes() == want[name].tobytes() for name in want)


def test_before_the_masked_gan_trains_the_score_is_the_first_gans():
    model = AttnOCGAN(small_config()).eval()
    x = images(6)
    with torch.no_grad():
        torch.testing.assert_close(model.score(x), OCGAN.score(model, x))


def test_patch_shuffle_permutes_tiles_within_each_image():
    x = images(3)
    shuffled = patch_shuffle(x, 8, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(shuffled, x)
    for a, b in zip(x, shuffled):  # same pixels, other places
        torch.testing.assert_close(a.flatten().sort().values, b.flatten().sort().values)
    torch.testing.assert_close(patch_shuffle(x, 32), x)  # one tile: nothing to shuffle


def test_registry_builds_the_attention_model_by_default():
    from attn_ocgan.config import RunConfig

    assert RunConfig().model == "attn-ocgan"
    model = create_model("attn-ocgan", small_config())
    assert isinstance(model, AttnOCGAN) and hasattr(model, "masked_gan")


def test_reset_masked_gan_at_reinitialises_it_and_its_score_weight():
    """Fresh weights for the masked GAN only; its averaged (EMA) copies restart from them."""
    config = small_config(mask_warmup_epochs=0, reset_masked_gan_at=2, ema_decay=0.9)
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    algorithm.start_epoch(0)
    algorithm.train_step(images(16), epoch=0)
    trained = {k: v.clone() for k, v in model.masked_gan.state_dict().items()}
    first_gan = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    algorithm.start_epoch(1)  # the start of epoch 2 (1-based)
    assert int(model.masked_gan_steps) == 0
    assert not torch.equal(trained["encoder.to_latent.weight"], model.masked_gan.state_dict()["encoder.to_latent.weight"])
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in first_gan.items())
    assert algorithm.masked.model is model.masked_gan
    for averaged, live in ((model.masked_gan.ema_encoder, model.masked_gan.encoder),
                           (model.masked_gan.ema_decoder, model.masked_gan.decoder)):
        assert int(averaged.n_averaged) == 0
        assert all(torch.equal(v, live.state_dict()[k]) for k, v in averaged.module.state_dict().items())


def test_binary_term_pushes_grey_masks_towards_0_or_1():
    loss = AttentionLoss(0.0, 0.0, MaskRegularisers(0.0, 0.5, binary_weight=1.0))
    logits = torch.full((2, 1, 32, 32), 0.3, requires_grad=True)
    masks = masks_from_logits(logits, 0.5)
    terms = loss(None, images(4), torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.cat([masks, masks]))
    terms["total"].backward()
    assert (logits.grad < 0).all()  # gradient descent raises logits above 0: masks move from 0.5 towards 1
    assert terms["mask_decisiveness"] < 0.2


def test_pretraining_epochs_train_only_the_attention_branch():
    model, logs, changed = one_step(0, pretrain_attention_epochs=1, mask_warmup_epochs=1)
    assert changed == {"attention", "guide"}
    assert not any(name.startswith(("generator", "masked_gan")) for name in logs)
    assert int(model.masked_gan_steps) == 0


def _toy_masks(complement_weight: float, steps: int = 150) -> torch.Tensor:
    """Learn a free per-pixel mask with AttentionLoss on toy data whose only class evidence sits in
    the top-left 12x12 corner (normal: bright square there; anomalous: dark square); the rest is
    noise from the same distribution for both. Returns the learnt mask (32, 32)."""
    from attn_ocgan.models.components import ConvCritic

    torch.manual_seed(0)
    logits = torch.zeros(1, 1, 32, 32, requires_grad=True)
    guide = ConvCritic(1, 8, 32)
    loss = AttentionLoss(1.0, complement_weight, MaskRegularisers(1.0, 0.3))
    optimizer = torch.optim.Adam([logits, *guide.parameters()], lr=0.02, betas=(0.5, 0.999))
    for _ in range(steps):
        normal, anomalous = torch.rand(16, 1, 32, 32) * 2 - 1, torch.rand(16, 1, 32, 32) * 2 - 1
        normal[..., :12, :12], anomalous[..., :12, :12] = 0.9, -0.9
        masks = masks_from_logits(logits, 0.5).expand(16, 1, 32, 32)
        terms = loss(guide, torch.cat([normal, anomalous]), torch.tensor([1.0] * 16 + [0.0] * 16), torch.cat([masks, masks]))
        # as the algorithm does: the mask follows attention_total, the guide guide_total
        (logits.grad,) = torch.autograd.grad(terms["attention_total"], [logits], retain_graph=True)
        for parameter, gradient in zip(guide.parameters(), torch.autograd.grad(terms["guide_total"], list(guide.parameters()))):
            parameter.grad = gradient
        optimizer.step()
    return masks_from_logits(logits, 0.5).detach()[0, 0]


def test_complement_game_moves_the_mask_onto_the_evidence():
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[:12, :12] = True
    with_game, without = _toy_masks(1.0), _toy_masks(0.0)
    contrast = {name: float(m[inside].mean() - m[~inside].mean()) for name, m in (("game", with_game), ("none", without))}
    assert contrast["game"] > 0.3, contrast  # the evidence is kept, the noise dropped
    assert contrast["game"] > contrast["none"] + 0.2, contrast  # without the game a grey mask suffices


def test_complement_game_gives_guide_and_attention_their_own_gradients():
    config = small_config(pretrain_attention_epochs=1, mask_complement_weight=1.0)  # epoch 0: only the attention step
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    captured = {}
    algorithm.attention_optimizer.step = lambda: captured.update(
        guide=[p.grad.clone() for p in model.guide.parameters()], attention=[p.grad.clone() for p in model.attention.parameters()])
    torch.manual_seed(3)
    logs = algorithm.train_step(images(16), epoch=0)
    assert {"attention/guide_complement", "attention/complement_confusion"} <= set(logs)
    # recompute both losses on the same inputs: the guide follows guide_total, the attention attention_total
    torch.manual_seed(3)
    x = images(16)
    anomalous = algorithm.pseudo_anomalies(x)
    both = torch.cat([x, anomalous])
    terms = algorithm.attention_loss(model.guide, both, torch.tensor([1.0] * 16 + [0.0] * 16), model.attention(model.encoder_features(both)))
    expected_guide = torch.autograd.grad(terms["guide_total"], list(model.guide.parameters()), retain_graph=True)
    expected_attention = torch.autograd.grad(terms["attention_total"], list(model.attention.parameters()))
    for got, want in zip(captured["guide"] + captured["attention"], expected_guide + expected_attention):
        torch.testing.assert_close(got, want)


def test_the_validation_record_scores_each_component_on_its_own():
    """validation_record: the score's AUC and each component's, named by ``score_component_names``."""
    from attn_ocgan.engine.evaluation import validation_record
    from attn_ocgan.models.base import NoveltyModel

    class TwoComponents(NoveltyModel):
        score_component_names = ("first_gan", "masked_gan")

        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def score_components(self, x):  # first GAN separates perfectly, masked GAN is inverted
            brightness = x.flatten(1).mean(1)
            return torch.stack([brightness, -brightness], dim=1)

        def combine_score_components(self, components):
            return components[:, 0] + 0.5 * components[:, 1]

        def score(self, x):
            return self.combine_score_components(self.score_components(x))

    is_novel = torch.tensor([0, 1, 0, 1, 1, 0])
    x = (is_novel.float() * 2 - 1)[:, None, None, None].expand(-1, 1, 4, 4) + torch.linspace(0, 0.1, 6)[:, None, None, None]
    record = validation_record(TwoComponents(), x, is_novel)
    assert record["auc"] == 1.0 and record["component_aucs"] == {"first_gan": 1.0, "masked_gan": 0.0}
    assert record["masks"] is None  # no attention maps


def test_tensorboard_mask_grids_hold_input_mask_masked_input_and_both_reconstructions():
    config = small_config()
    model = AttnOCGAN(config)
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    normal, novel = images(3, seed=1), images(10, seed=2)
    grids = algorithm.image_grids(images(4), model.sample_latent(4), normal, novel)
    assert {"masks/test_normal", "masks/test_novel"} <= set(grids)
    with torch.no_grad():
        masks = model.attention_maps(normal)
        masked = apply_mask(normal, masks)
        expected = [normal, (masks * 2 - 1).expand_as(normal), masked, model.reconstruct(normal),
                    model.masked_gan.reconstruct(masked)]
    torch.testing.assert_close(grids["masks/test_normal"], torch.cat(expected))
    assert len(grids["masks/test_novel"]) == 5 * 8  # rows of N_GRID_IMAGES novel images


def test_mined_pseudo_anomalies_are_decodes_of_mined_latents():
    """mined_negative_fraction: the decoded pseudo-anomalies come from latents moved by OCGAN's
    mining (tests/unit/test_mining.py: it lowers the classifier's logit); 0 keeps random latents."""
    from attn_ocgan.models.components import evaluating
    from attn_ocgan.models.ocgan.mining import mine_informative_negatives

    torch.manual_seed(3)
    config = small_config(corruption_fraction=0.0, mining_steps=3, mining_step_size=0.5)
    model = AttnOCGAN(config)
    for layer in model.modules():  # PyTorch's default init: DCGAN's N(0, 0.02) leaves an untrained classifier flat
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layer.reset_parameters()
    algorithm = AttnOCGANAlgorithm(model, config, TrainConfig())
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def negatives(fraction):
        config.mined_negative_fraction = fraction
        torch.manual_seed(4)
        return algorithm.pseudo_anomalies(images(8))

    torch.manual_seed(4)
    latent = model.sample_latent(8)
    with evaluating(model.decoder), evaluating(model.classifier):
        mined = mine_informative_negatives(model.decoder, model.classifier, latent[:4], 3, 0.5)
        with torch.no_grad():
            random_decodes, half_mined = model.decoder(latent), model.decoder(torch.cat([mined, latent[4:]]))
    torch.testing.assert_close(negatives(0.0), random_decodes, rtol=0, atol=0)
    torch.testing.assert_close(negatives(0.5), half_mined, rtol=0, atol=0)
    assert not torch.equal(half_mined[:4], random_decodes[:4])
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # mining moves latents only
    assert all(p.grad is None for p in model.parameters())
