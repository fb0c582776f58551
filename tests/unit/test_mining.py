import torch

from attn_ocgan.models.ocgan import OCGAN, OCGANConfig, mine_informative_negatives


def test_mining_lowers_classifier_output_and_freezes_networks():
    torch.manual_seed(0)
    model = OCGAN(OCGANConfig(latent_channels=8, generator_width=8, classifier_width=8)).train()
    latent = model.sample_latent(32)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        before = model.classifier(model.decoder(latent)).mean()
    mined = mine_informative_negatives(model.decoder, model.classifier, latent, steps=5, step_size=1.0)
    with torch.no_grad():
        after = model.classifier(model.decoder(mined)).mean()
    assert after < before - 1e-3, (before, after)
    assert not mined.requires_grad and mined.shape == latent.shape
    assert mined.min() >= -1 and mined.max() <= 1
    assert not torch.equal(mined, latent)
    for name, p in model.named_parameters():
        assert torch.equal(weights[name], p), f"{name} changed during mining"
        assert p.grad is None, f"{name} received a .grad during mining"


def test_zero_steps_returns_the_input():
    model = OCGAN(OCGANConfig(latent_channels=4, generator_width=8, classifier_width=8))
    latent = model.sample_latent(3)
    torch.testing.assert_close(mine_informative_negatives(model.decoder, model.classifier, latent, 0, 1.0), latent)
