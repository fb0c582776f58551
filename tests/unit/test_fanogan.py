"""f-AnoGAN (attn_ocgan/models/fanogan): the WGAN-GP term, the phase schedule, frozen networks in the encoder
phase, the izi_f score, and a one-pass score that needs no gradient."""
import dataclasses

import pytest
import torch
from torch import nn

from attn_ocgan.config import RunConfig, TrainConfig
from attn_ocgan.errors import UserError
from attn_ocgan.models.fanogan import FAnoGAN, FAnoGANAlgorithm, FAnoGANConfig
from attn_ocgan.models.fanogan.loss import gradient_penalty
from tests.conftest import SMALL_MODEL_ARGS

TINY = {"latent_dim": 6, "generator_width": 8, "critic_width": 8, "encoder_width": 8}


def _images(n=8, channels=1, size=32, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm running statistics), copied."""
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _changed(module: nn.Module, before: dict[str, torch.Tensor], parameters_only: bool = False) -> list[str]:
    names = dict(module.named_parameters()) if parameters_only else module.state_dict()
    return [key for key, value in names.items() if not torch.equal(value, before[key])]


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its gradient is w at every point."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, images):
        return (images * self.weight).flatten(1).sum(1)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_grows_with_the_gradient_norm():
    real, fake = _images(6), _images(6, seed=1)
    direction = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2))
    unit = LinearCritic(direction / direction.norm())
    assert gradient_penalty(unit, real, fake).item() < 1e-10  # ||grad|| = 1 at every interpolate
    doubled = LinearCritic(2 * direction / direction.norm())
    penalty = gradient_penalty(doubled, real, fake)
    torch.testing.assert_close(penalty, torch.tensor(1.0))  # (2 - 1)^2
    penalty.backward()  # the penalty trains the critic: its gradient reaches the weights (create_graph)
    assert doubled.weight.grad is not None and doubled.weight.grad.abs().sum() > 0
    assert gradient_penalty(LinearCritic(torch.zeros(1, 32, 32)), real, fake).item() == pytest.approx(1.0)  # (0 - 1)^2


def test_gradient_penalty_is_taken_at_interpolates_of_real_and_fake():
    """D(x) = ||x||^2 / 2 has gradient x: with real = fake every interpolate is that image, so the penalty
    is mean (||x|| - 1)^2 whatever the mixing weights."""

    class Quadratic(nn.Module):
        def forward(self, images):
            return images.pow(2).flatten(1).sum(1) / 2

    images = _images(5)
    expected = (images.flatten(1).norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(gradient_penalty(Quadratic(), images, images.clone()), expected)


def test_default_schedule_trains_both_phases_within_the_default_epochs():
    config = FAnoGANConfig(**TINY)
    algorithm = FAnoGANAlgorithm(FAnoGAN(config), config, TrainConfig())
    phases = [algorithm.phases(epoch) for epoch in range(TrainConfig().epochs)]
    assert phases[:20] == [(True, False)] * 20  # WGAN-GP
    assert phases[20:] == [(False, True)] * 5  # the last encoder_epochs: the encoder alone
    # the tests' configuration: a 1-epoch run trains the GAN and the encoder in its one epoch
    test_config = FAnoGANConfig(**SMALL_MODEL_ARGS["fanogan"])
    assert FAnoGANAlgorithm(FAnoGAN(test_config), test_config, TrainConfig(epochs=1)).phases(0) == (True, True)
    with pytest.raises(UserError, match="encoder_epochs=5 leaves no epoch of a 5-epoch run"):
        FAnoGANAlgorithm(FAnoGAN(config), config, TrainConfig(epochs=5))


def test_the_generator_steps_after_every_n_critic_th_critic_step_and_the_encoder_waits():
    torch.manual_seed(0)
    config = FAnoGANConfig(**TINY, n_critic=3, encoder_epochs=1)
    model = FAnoGAN(config)
    algorithm = FAnoGANAlgorithm(model, config, TrainConfig(epochs=3))
    generator, encoder = _state(model.generator), _state(model.encoder)
    for step in range(3):
        critic = _state(model.critic)
        logs = algorithm.train_step(_images(seed=step), epoch=1)
        assert _changed(model.critic, critic)  # a critic step on every batch
        assert set(logs) == {"critic", "critic/wasserstein", "critic/gradient_penalty", "generator"}
        # the generator's weights step after the 3rd (its BatchNorm statistics move with every sample it draws)
        assert (not _changed(model.generator, generator, parameters_only=True)) == (step < 2)
    assert not _changed(model.encoder, encoder)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert algorithm.critic_steps == 3 and algorithm.state_dict()["critic_steps"] == 3


def test_encoder_phase_trains_the_encoder_alone():
    torch.manual_seed(0)
    config = FAnoGANConfig(**TINY, encoder_epochs=1)
    model = FAnoGAN(config)
    algorithm = FAnoGANAlgorithm(model, config, TrainConfig(epochs=3))
    algorithm.train_step(_images(), epoch=0)  # a GAN step first: the frozen weights are not the initial ones
    model.zero_grad(set_to_none=True)
    generator, critic, encoder = _state(model.generator), _state(model.critic), _state(model.encoder)
    for step in range(3):
        logs = algorithm.train_step(_images(seed=step + 1), epoch=2)
    assert set(logs) == {"encoder/izif", "encoder/pixel", "encoder/feature"}
    assert not _changed(model.generator, generator)  # weights and BatchNorm statistics
    assert not _changed(model.critic, critic)
    assert _changed(model.encoder, encoder)
    assert all(p.grad is None for p in [*model.generator.parameters(), *model.critic.parameters()])
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again afterwards
    assert model.generator.training and model.critic.training  # modes restored
    torch.testing.assert_close(logs["encoder/izif"], logs["encoder/pixel"] + config.kappa * logs["encoder/feature"],
                               rtol=1e-5, atol=1e-7)
    # the progress line follows the phase: the critic's distance, then the encoder's loss
    algorithm.start_epoch(0)
    assert algorithm.progress_loss == "critic/wasserstein"
    algorithm.start_epoch(2)
    assert algorithm.progress_loss == "encoder/izif" and algorithm.progress_loss in logs


def test_score_is_the_pixel_residual_plus_kappa_times_the_feature_residual():
    model = FAnoGAN(FAnoGANConfig(**TINY, kappa=0.7)).eval()
    images = _images(4)
    with torch.no_grad():
        latent = model.encoder(images)
        reconstruction = model.generator(latent)
        pixel = ((images - reconstruction) ** 2).sum((1, 2, 3)) / (1 * 32 * 32)
        image_features, reconstruction_features = model.critic.features(images), model.critic.features(reconstruction)
        n_features = image_features[0].numel()
        feature = ((image_features - reconstruction_features) ** 2).sum((1, 2, 3)) / n_features
        torch.testing.assert_close(model.score(images), pixel + 0.7 * feature)
        torch.testing.assert_close(model.reconstruct(images), reconstruction)
        # the two residuals are the score's components, summed raw (no training-image statistics)
        torch.testing.assert_close(model.score_components(images), torch.stack([pixel, feature], 1))
        assert model.score_component_names == ("pixel", "feature") and not model.score_components_normalised
        assert model.score_component_weights == {"pixel": 1.0, "feature": 0.7}
        assert model.diagnostics()["score_combination"]["normalised"] is False
    assert feature.min() > 0 and latent.abs().max() < 1  # the feature term counts; E(x) lies in the prior's (-1, 1)
    rows = model.residual_panel(images)
    assert [label for label, _ in rows] == ["input", "G(E(x))", "|x - G(E(x))|"]
    torch.testing.assert_close(rows[2][1], (images - reconstruction).abs() - 1)
    assert set(model.figure_panels(images)) == {"residuals"}
    assert model.gradcam_heads()["critic"](images).shape == (4,)  # a single logit per image


def test_encoder_training_lowers_the_izif_loss_on_a_toy_set():
    """Images the frozen generator can produce: the encoder learns latents that reproduce them."""
    torch.manual_seed(0)
    config = FAnoGANConfig(**TINY, encoder_epochs=1)
    model = FAnoGAN(config)
    for layer in model.generator.modules():  # PyTorch's default init: G(z) then varies with z (DCGAN's barely does)
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            layer.reset_parameters()
        if isinstance(layer, nn.BatchNorm2d):  # running statistics of many samples, as after GAN training
            layer.reset_running_stats()
            layer.momentum = None
    with torch.no_grad():
        model.generator.train()(model.sample_latent(512))
        latents = model.sample_latent(32, torch.Generator().manual_seed(1))
        images = model.generator.eval()(latents)
    algorithm = FAnoGANAlgorithm(model, config, TrainConfig(epochs=2))
    losses = [algorithm.train_step(images, epoch=1)["encoder/izif"] for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(later < earlier for earlier, later in zip(losses[::5], losses[5::5]))


def test_scoring_is_one_pass_without_gradients():
    model = FAnoGAN(FAnoGANConfig(**TINY)).eval()
    images = _images(4)
    with torch.inference_mode():  # as evaluation scores
        scores = model.score(images)
        reconstruction = model.reconstruct(images)
    assert scores.shape == (4,) and torch.isfinite(scores).all() and reconstruction.shape == images.shape
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(model.score(images[:2]).detach(), scores[:2].clone())  # no batch dependence in eval mode
    assert model.exportable and model.train_statistics_images is None


@pytest.mark.parametrize("channels,size", [(1, 32), (3, 32), (1, 64), (3, 64)])
def test_sizes_and_channels(channels, size):
    torch.manual_seed(0)
    config = FAnoGANConfig(**SMALL_MODEL_ARGS["fanogan"], in_channels=channels, image_size=size)
    model = FAnoGAN(config)
    algorithm = FAnoGANAlgorithm(model, config, TrainConfig(epochs=1))
    images = _images(4, channels, size)
    logs = algorithm.train_step(images, epoch=0)
    assert {"critic", "generator", "encoder/izif"} <= set(logs)
    with torch.inference_mode():
        assert model.eval().score(images).shape == (4,)
    assert model.critic.features(images).shape[-2:] == (4, 4)


def test_options_are_range_checked():
    for option in ({"n_critic": 0}, {"encoder_epochs": 0}, {"kappa": -1.0}, {"gradient_penalty_weight": -1.0},
                   {"adam_beta2": 1.0}, {"lr_factor": 0.0}):
        with pytest.raises(UserError, match=f"model option {next(iter(option))}="):
            FAnoGANConfig(**option)


def test_optimisers_use_the_wgan_gp_settings_scaled_by_lr():
    config = FAnoGANConfig(**TINY)
    algorithm = FAnoGANAlgorithm(FAnoGAN(config), config, TrainConfig())
    for optimizer in algorithm.optimizers.values():
        group = optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(1e-4) and group["betas"] == (0.0, 0.9)
    assert set(algorithm.optimizers) == {"generator", "critic", "encoder"}
    scaled = FAnoGANAlgorithm(FAnoGAN(config), config, TrainConfig(lr=1e-3))
    assert scaled.optimizers["critic"].param_groups[0]["lr"] == pytest.approx(5e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_checkpoint_round_trip_and_torchscript_export(tmp_path):
    from attn_ocgan.engine.checkpoint import (
        model_from_checkpoint,
        read_checkpoint,
        save_checkpoint,
    )
    from attn_ocgan.engine.export import export_model
    from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config

    torch.manual_seed(0)
    model_config = resolve_model_config("fanogan", "mnist5k", SMALL_MODEL_ARGS["fanogan"], 1, 32)
    config = dataclasses.replace(RunConfig(model="fanogan"), model_args=dataclasses.asdict(model_config))
    model = create_model("fanogan", model_config)
    algorithm = create_algorithm("fanogan", model, model_config, config.train)
    algorithm.train_step(_images(), 0)
    path = tmp_path / "last.pt"
    save_checkpoint(path, config, model, algorithm, epoch=1)
    payload = read_checkpoint(path)
    restored = create_algorithm("fanogan", model_from_checkpoint(payload)[1], model_config, config.train)
    restored.load_state_dict(payload["algorithm"])
    assert restored.critic_steps == 1
    out = export_model(path, tmp_path / "scorer.pt", "torchscript")
    images = ((_images(3) + 1) * 127.5).round().to(torch.uint8)
    scores, _ = torch.jit.load(str(out))(images)
    with torch.no_grad():
        torch.testing.assert_close(scores, model.eval().score(images.float() / 127.5 - 1), rtol=1e-4, atol=1e-4)
