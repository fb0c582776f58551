"""One test over every registered model: shapes, every parameter learns, no NaN; plus the baselines' own checks."""
import math

import pytest
import torch

from attn_ocgan.config import TrainConfig
from attn_ocgan.models.anogan import AnoGAN, AnoGANConfig
from attn_ocgan.registry import create_algorithm, create_model, known_models, resolve_model_config
from tests.conftest import SMALL_MODEL_ARGS


def _images(n=8, seed=0):
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", known_models())
def test_every_registered_model_trains_every_parameter_and_scores(name):
    assert SMALL_MODEL_ARGS[name], f"give {name} a tiny test configuration: register_model(..., test_args=...)"
    config = resolve_model_config(name, "mnist5k", SMALL_MODEL_ARGS[name], 1, 32)
    model = create_model(name, config)
    algorithm = create_algorithm(name, model, config, TrainConfig())
    images = _images()
    before = {key: p.detach().clone() for key, p in model.named_parameters() if p.requires_grad}
    logs = algorithm.train_step(images, epoch=30)  # late epoch: every schedule (mining, masked GAN) is active
    assert logs and all(math.isfinite(value) for value in logs.values())
    assert algorithm.progress_loss in logs  # what the progress bar shows
    unchanged = [key for key, p in model.named_parameters() if key in before and torch.equal(p, before[key])]
    assert not unchanged, f"parameters without a gradient from their loss: {unchanged[:5]}"
    algorithm.end_epoch(images)
    model.eval()
    with torch.inference_mode():  # as evaluation calls it
        scores = model.score(images)
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    latent = model.sample_latent(4)  # None for a model that decodes no codes
    grids = algorithm.image_grids(images[:4], latent, images[:2], images[2:4])
    assert grids and all(grid.shape[1:] == images.shape[1:] and torch.isfinite(grid).all() for grid in grids.values())
    assert isinstance(model.score_name, str) and model.score_name  # the axis label of its score figures


def test_anogan_latent_search_lowers_its_loss_and_leaves_the_weights_alone():
    model = AnoGAN(AnoGANConfig(**SMALL_MODEL_ARGS["anogan"])).eval()
    weights = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():  # images the generator can produce exactly, from latents the search does not start at
        images = model.generator(model.sample_latent(6, torch.Generator().manual_seed(123)))
    _, _, history = model.search_latent(images, steps=30)
    assert history[-1] < 0.5 * history[0]
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in weights.items())
    assert all(p.grad is None for p in model.parameters())
    # the score is the loss after the configured search, which starts from the same latents every call
    default_latent, losses, _ = model.search_latent(images)
    torch.testing.assert_close(model.score(images), model.anomaly_loss(images, default_latent))
    torch.testing.assert_close(losses, model.anomaly_loss(images, default_latent))
    # the residual panel shows input, G(z*) and |x - G(z*)| on the [-1, 1] display scale
    images = _images(2)
    rows = model.residual_panel(images)
    assert [label for label, _ in rows] == ["input", "G(z*)", "|x - G(z*)|"]
    torch.testing.assert_close(rows[2][1], (images - rows[1][1]).abs() - 1)


def test_anogan_score_of_an_image_does_not_depend_on_its_batch():
    """Every search starts from the same z0: an image scores the same alone, with other images
    and at another position (before, each batch position had its own start)."""
    model = AnoGAN(AnoGANConfig(**{**SMALL_MODEL_ARGS["anogan"], "search_steps": 5})).eval()
    for layer in model.generator.modules():  # PyTorch's default init: G(z) then varies with z (DCGAN's barely does)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layer.reset_parameters()
    images = _images(5)
    together = model.score(images)
    alone = torch.cat([model.score(images[i:i + 1]) for i in range(len(images))])
    reversed_order = model.score(images.flip(0)).flip(0)
    torch.testing.assert_close(alone, together, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(reversed_order, together, rtol=1e-6, atol=1e-5)
    assert together.std() > 1e-3  # the images do get different scores


def test_anogan_evaluation_writes_residual_images(tmp_path):
    """evaluate_model scores under inference_mode; AnoGAN's search must still run and draw residuals."""
    from attn_ocgan.data.one_class import OneClassData
    from attn_ocgan.engine.evaluation import evaluate_model

    model = AnoGAN(AnoGANConfig(**SMALL_MODEL_ARGS["anogan"]))
    test = _images(12, seed=1)
    data = OneClassData(train=_images(6), validation=_images(0), test=test,
                        test_is_novel=torch.tensor([0, 1] * 6), test_classes=torch.tensor([0, 1] * 6),
                        normal_class=0, class_names=("a", "b"))
    metrics = evaluate_model(model, data, tmp_path, title="anogan")
    assert 0 <= metrics["auc"] <= 1
    assert {"metrics.json", "roc.png", "score_histogram.png", "residuals.png"} <= {p.name for p in tmp_path.iterdir()}


def test_anogan_train_statistics_use_a_seeded_subset_of_the_training_images(monkeypatch):
    """AnoGAN's scores each cost a latent search: evaluation scores only ``train_statistics_images``
    normal training images (the same ones every time) and all the test images."""
    from attn_ocgan.data.one_class import OneClassData
    from attn_ocgan.engine.evaluation import evaluate_model, train_statistics_images

    model = AnoGAN(AnoGANConfig(**{**SMALL_MODEL_ARGS["anogan"], "search_steps": 2}))
    monkeypatch.setattr(model, "train_statistics_images", 4, raising=False)
    train = _images(10)
    chosen = train_statistics_images(model, train)
    assert len(chosen) == 4
    torch.testing.assert_close(chosen, train_statistics_images(model, train))  # seeded: the same subset
    assert not torch.equal(chosen, train[:4])  # drawn, not the first four
    assert all(any(torch.equal(image, other) for other in train) for image in chosen)
    data = OneClassData(train=train, validation=_images(0), test=_images(6, seed=1),
                        test_is_novel=torch.tensor([0, 1] * 3), test_classes=torch.tensor([0, 1] * 3),
                        normal_class=0, class_names=("a", "b"))
    metrics = evaluate_model(model, data)
    assert (metrics["n_train"], metrics["n_train_scored"], metrics["n_test"]) == (10, 4, 6)
    assert train_statistics_images(torch.nn.Identity(), train) is train  # other models: every training image


def test_slow_scoring_shows_a_progress_bar_and_keeps_the_batch_order(monkeypatch, capsys):
    from attn_ocgan.engine import evaluation

    class MeanScorer(torch.nn.Module):
        def score(self, x):
            return x.flatten(1).mean(1)

    images = torch.arange(5.0).view(5, 1, 1, 1)
    assert evaluation.compute_scores(MeanScorer(), images, batch_size=2).tolist() == [0, 1, 2, 3, 4]
    assert "scoring" not in capsys.readouterr().err  # fast scoring: no bar
    monkeypatch.setattr(evaluation, "SCORING_BAR_DELAY_S", 0.0)
    assert evaluation.compute_scores(MeanScorer(), images, batch_size=2).tolist() == [0, 1, 2, 3, 4]
    bar = capsys.readouterr().err
    assert "scoring 5 images" in bar and "0/3 " in bar  # counts three batches of at most 2
