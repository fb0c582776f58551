import pytest
import torch

from attn_ocgan.config import TrainConfig
from attn_ocgan.models.ocgan import OCGAN, OCGANAlgorithm, OCGANConfig
from attn_ocgan.models.components import critic_loss


@pytest.mark.parametrize("latent_size,channels", [(1, 1), (3, 3)])
def test_shapes_and_bounded_latent(latent_size, channels):
    config = OCGANConfig(in_channels=channels, latent_size=latent_size, latent_channels=8, generator_width=8,
                         visual_disc_width=4, classifier_width=8)
    model = OCGAN(config).eval()
    images = torch.rand(5, channels, 32, 32) * 2 - 1
    latent = model.encoder(images * 50)  # extreme inputs must still give a bounded latent
    assert latent.shape == (5, 8, latent_size, latent_size)
    assert latent.abs().max() < 1.0
    assert model.decoder(latent).shape == images.shape
    assert model.decoder(latent).abs().max() <= 1.0
    assert model.visual_discriminator(images).shape == (5,)
    assert model.classifier(images).shape == (5,)
    assert model.latent_discriminator(latent).shape == (5,)
    scores = model.score(images)
    assert scores.shape == (5,)
    expected = (model.reconstruct(images) - images).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(scores, expected)


def test_uniform_latent_samples_fill_the_box():
    model = OCGAN(OCGANConfig(latent_channels=16))
    latent = model.sample_latent(4000)
    assert latent.shape == (4000, 16, 1, 1)
    assert latent.min() >= -1 and latent.max() <= 1
    assert abs(latent.mean().item()) < 0.02 and latent.min() < -0.99 and latent.max() > 0.99


def _parameters_with_gradient(module):
    return {name for name, p in module.named_parameters() if p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0}


def test_every_parameter_gets_a_gradient_from_its_own_loss():
    config = OCGANConfig(latent_channels=8, generator_width=8, visual_disc_width=4, classifier_width=8, mining_steps=2)
    model = OCGAN(config).train()
    images = torch.rand(6, 1, 32, 32) * 2 - 1
    encoded = model.encoder(images + 0.2 * torch.randn_like(images))
    reconstruction = model.decoder(encoded)
    uniform = model.sample_latent(6)
    fake = model.decoder(uniform)
    losses = {
        model.classifier: critic_loss(model.classifier(reconstruction.detach()), model.classifier(fake.detach())),
        model.latent_discriminator: critic_loss(model.latent_discriminator(uniform), model.latent_discriminator(encoded.detach())),
        model.visual_discriminator: critic_loss(model.visual_discriminator(images), model.visual_discriminator(fake.detach())),
    }
    for module, loss in losses.items():
        model.zero_grad(set_to_none=True)
        loss.backward()
        names = {n for n, _ in module.named_parameters()}
        assert _parameters_with_gradient(module) == names, f"{type(module).__name__} has parameters without gradient"
        assert torch.isfinite(loss)
    # Generator loss reaches every encoder and decoder parameter.
    algorithm = OCGANAlgorithm(model, config, TrainConfig())
    model.zero_grad(set_to_none=True)
    terms = algorithm.generator_loss(reconstruction, images, model.latent_discriminator(encoded), model.visual_discriminator(fake))
    terms["total"].backward()
    for module in (model.encoder, model.decoder):
        assert _parameters_with_gradient(module) == {n for n, _ in module.named_parameters()}


def _one_train_step(**overrides):
    """Run one OCGANAlgorithm step on a tiny model; returns (model, weights before, logs)."""
    config = OCGANConfig(latent_channels=8, generator_width=8, visual_disc_width=4, classifier_width=8, **overrides)
    model = OCGAN(config)
    algorithm = OCGANAlgorithm(model, config, TrainConfig())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logs = algorithm.train_step(torch.rand(8, 1, 32, 32) * 2 - 1, epoch=0)
    return model, before, logs


def test_train_step_updates_all_networks_and_stays_finite():
    model, before, logs = _one_train_step(mining_steps=1, mining_start_epoch=0)  # mining active in this step
    assert set(logs) >= {"classifier", "latent_discriminator", "visual_discriminator", "generator/recon",
                         "generator/latent_adv", "generator/visual_adv", "generator/total"}
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    for prefix in ("encoder", "decoder", "latent_discriminator", "visual_discriminator", "classifier"):
        changed = [not torch.equal(before[n], p) for n, p in model.named_parameters() if n.startswith(prefix)]
        assert any(changed), f"{prefix} did not change in a train step"


def test_ae_warmup_trains_only_the_autoencoder():
    model, before, logs = _one_train_step(ae_warmup_epochs=1)
    assert set(logs) == {"generator/recon", "generator/total"}
    for name, p in model.named_parameters():
        if name.startswith(("classifier", "visual_discriminator", "latent_discriminator")):
            assert torch.equal(before[name], p)


def test_ema_scoring_weights_follow_the_live_weights():
    config = OCGANConfig(generator_width=8, classifier_width=8, visual_disc_width=4, ema_decay=0.9)
    model = OCGAN(config)
    algorithm = OCGANAlgorithm(model, config, TrainConfig())
    images = torch.rand(16, 1, 32, 32) * 2 - 1
    algorithm.train_step(images, 0)
    live = model.encoder.to_latent.weight
    torch.testing.assert_close(model.ema_encoder.module.to_latent.weight, live)  # first update copies
    previous = live.detach().clone()
    algorithm.train_step(images, 0)
    torch.testing.assert_close(model.ema_encoder.module.to_latent.weight, 0.9 * previous + 0.1 * live.detach())
    assert not torch.allclose(model.ema_encoder.module.to_latent.weight, live)
    # BatchNorm statistics are copied, not averaged
    for averaged, current in zip(model.ema_decoder.module.buffers(), model.decoder.buffers()):
        assert torch.equal(averaged, current)
    # the score reconstructs through the averaged networks
    model.eval()
    with torch.no_grad():
        expected = (model.ema_decoder(model.ema_encoder(images)) - images).pow(2).mean(dim=(1, 2, 3))
        torch.testing.assert_close(model.score(images), expected)
    # and ema_decay=0 (the default) builds no averaged copies
    assert not any(k.startswith("ema_") for k in OCGAN(OCGANConfig()).state_dict())
