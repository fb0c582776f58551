"""Skip-GANomaly (``attn_ocgan/models/skip_ganomaly``): the U-Net's skips carry the input past the
bottleneck, the score is 0.9 z(reconstruction) + 0.1 z(latent) with statistics of the normal training
images given to ``end_epoch``, and training lowers the contextual loss.

``copy_check`` is the issue's copy check (do the skips let the generator copy novel images as well
as normal ones?): a short training on mnist5k digit 1, then the mean reconstruction error of normal
and novel test images and the AUC of each score component. The test runs it for one epoch; the
numbers in the model's README come from (a few minutes on one CPU thread in all)

    python -m tests.unit.test_skip_ganomaly --epochs 2 --compare-ganomaly
    python -m tests.unit.test_skip_ganomaly --epochs 15 --width 16 --compare-ganomaly
    python -m tests.unit.test_skip_ganomaly --epochs 50 --width 16 --compare-ganomaly
    python -m tests.unit.test_skip_ganomaly --epochs 50 --width 16 --normal-class 8 --compare-ganomaly
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.errors import UserError
from attn_ocgan.models.skip_ganomaly import SkipGANomaly, SkipGANomalyAlgorithm, SkipGANomalyConfig

TINY = {"generator_width": 8, "discriminator_width": 8}


def _images(n=8, channels=1, size=32, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _model(channels=1, size=32, **args):
    return SkipGANomaly(SkipGANomalyConfig(in_channels=channels, image_size=size, **{**TINY, **args}))


def _trained(seed=0, steps=2, **args):
    """A tiny model after a few training steps (non-trivial weights and BatchNorm statistics)."""
    torch.manual_seed(seed)
    model = _model(**args)
    algorithm = SkipGANomalyAlgorithm(model, model.config, TrainConfig())
    for step in range(steps):
        algorithm.train_step(_images(8, seed=100 + step), epoch=0)
    return model, algorithm


# -- the generator -----------------------------------------------------------------------------
@pytest.mark.parametrize("channels,size", [(1, 32), (3, 64)])
def test_the_unet_computes_what_the_official_unet_generator_computes(channels, size):
    """Given the official generator's weights (its state in module order: each level's down conv and
    norm from the outside in, then each level's up conv and norm from the inside out), ours gives the
    same images in training mode (batch statistics) and, after the same updates of the running
    statistics, in eval mode."""
    from tests.unit.official_unet import UnetGenerator

    torch.manual_seed(0)
    official = UnetGenerator(channels, channels, num_downs=int(math.log2(size)), ngf=4)
    ours = SkipGANomaly(SkipGANomalyConfig(in_channels=channels, image_size=size, generator_width=4)).generator
    order = [*ours.down, *reversed(ours.up)]
    ours_named = [(stage, name) for stage in order for name in stage.state_dict()]
    theirs = list(official.state_dict().values())
    assert [tuple(stage.state_dict()[name].shape) for stage, name in ours_named] == [tuple(t.shape) for t in theirs]
    for stage in order:
        stage.load_state_dict({name: tensor for (owner, name), tensor in zip(ours_named, theirs) if owner is stage})
    images = _images(6, channels, size)
    for batch in (images, images.flip(0)):  # training mode: both update their running statistics
        torch.testing.assert_close(ours(batch), official(batch.clone()), atol=1e-5, rtol=1e-4)
    ours.eval(), official.eval()
    torch.testing.assert_close(ours(images), official(images.clone()), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("channels,size", [(1, 32), (3, 32), (1, 64), (3, 64)])
def test_the_unet_goes_down_to_a_1x1_bottleneck_and_back_to_the_input_shape(channels, size):
    model = _model(channels, size).eval()
    captured = {}
    model.generator.bottleneck.register_forward_hook(lambda module, inputs, output: captured.update(code=output))
    images = _images(3, channels, size)
    with torch.no_grad():
        output = model.reconstruct(images)
    assert output.shape == images.shape and output.abs().max() < 1  # tanh output
    assert captured["code"].shape == (3, 8 * TINY["generator_width"], 1, 1)
    assert len(model.generator.down) == int(math.log2(size))  # 32: five halvings, 64: six (official num_downs)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_the_bottom_of_the_u_is_its_convolutions_as_one_matrix_product(memory_format):
    """BottomConv2d (2x2 -> 1x1) and BottomConvTranspose2d (1x1 -> 2x2) give the plain layers' outputs
    and gradients with the same weights, and fall back to them on other sizes."""
    from attn_ocgan.models.skip_ganomaly.torch_model import BottomConv2d, BottomConvTranspose2d

    torch.manual_seed(0)
    for fast, plain, size in ((BottomConv2d(6, 5), torch.nn.Conv2d(6, 5, 4, 2, 1, bias=False), 2),
                              (BottomConvTranspose2d(6, 5), torch.nn.ConvTranspose2d(6, 5, 4, 2, 1, bias=False), 1)):
        plain.load_state_dict(fast.state_dict())  # the same parameter names and shapes
        for side in (size, 8):  # the matrix product, then the fallback
            x = torch.randn(3, 6, side, side).to(memory_format=memory_format).requires_grad_()
            ours, theirs = fast(x), plain(x)
            assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-6)
            weights = torch.randn_like(theirs)
            ours_grads = torch.autograd.grad((ours * weights).sum(), (x, fast.weight))
            theirs_grads = torch.autograd.grad((theirs * weights).sum(), (x, plain.weight))
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours_grads, theirs_grads))


def test_the_skips_carry_a_one_pixel_change_past_a_zeroed_bottleneck():
    """With the bottleneck's output replaced by zeros, nothing reaches the decoder but the skips: the
    output still depends on the input, and a change at one pixel changes the output most near it
    (a GANomaly-style encoder-decoder would give the same image whatever the input)."""
    model, _ = _trained()
    model.eval()
    model.generator.bottleneck.register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    images = _images(2)
    row, column = 9, 21
    changed = images.clone()
    changed[:, :, row, column] = -images[:, :, row, column].sign()  # flip the pixel to the other extreme
    with torch.no_grad():
        before, after = model.reconstruct(images), model.reconstruct(changed)
        other = model.reconstruct(_images(2, seed=7))
    assert (before - other).abs().mean() > 1e-4  # different inputs, different outputs, with no code at all
    difference = (after - before).abs().sum((0, 1))  # (H, W)
    assert difference.max() > 1e-4
    peak = divmod(int(difference.argmax()), difference.shape[1])
    assert abs(peak[0] - row) <= 2 and abs(peak[1] - column) <= 2, peak
    near = difference[row - 2:row + 3, column - 2:column + 3].mean()
    far = torch.cat([difference[:, :8].flatten(), difference[20:, :].flatten()]).mean()  # >= 8 pixels away
    assert near > 10 * far


# -- the score ---------------------------------------------------------------------------------
def _components_by_hand(model, images):
    """(reconstruction, latent) errors, written out from their definitions (eval mode)."""
    with torch.no_grad():
        reconstruction = model.generator(images)
        real, fake = model.discriminator.features(images), model.discriminator.features(reconstruction)
        return ((images - reconstruction) ** 2).mean((1, 2, 3)), ((real - fake) ** 2).mean((1, 2, 3))


def test_the_score_is_0_9_z_reconstruction_plus_0_1_z_latent_with_training_statistics():
    model, algorithm = _trained()
    train, test = _images(12, seed=1), _images(6, seed=2)
    algorithm.end_epoch(train)
    model.eval()
    train_reconstruction, train_latent = _components_by_hand(model, train)
    test_reconstruction, test_latent = _components_by_hand(model, test)
    expected = (0.9 * (test_reconstruction - train_reconstruction.mean()) / train_reconstruction.std()
                + 0.1 * (test_latent - train_latent.mean()) / train_latent.std())
    with torch.no_grad():
        torch.testing.assert_close(model.score(test), expected, rtol=1e-4, atol=1e-5)
        components = model.score_components(test)
        torch.testing.assert_close(components, torch.stack([test_reconstruction, test_latent], 1), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(model.combine_score_components(components), expected, rtol=1e-4, atol=1e-5)
    assert model.score_component_names == ("reconstruction", "latent")
    assert model.score_component_weights == pytest.approx({"reconstruction": 0.9, "latent": 0.1})
    assert expected.std() > 0.1  # the images do get different scores
    # the evaluation's per-component columns are these raw errors, and its score the same combination
    from attn_ocgan.engine.evaluation import scores_and_columns

    scores, columns = scores_and_columns(model, test)
    torch.testing.assert_close(torch.from_numpy(scores).float(), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(columns["latent"]).float(), test_latent, rtol=1e-5, atol=1e-7)


def test_lambda_is_the_reconstruction_weight():
    model, algorithm = _trained(reconstruction_score_weight=1.0)
    algorithm.end_epoch(_images(12, seed=1))
    model.eval()
    test = _images(6, seed=2)
    reconstruction, _ = _components_by_hand(model, test)
    with torch.no_grad():
        torch.testing.assert_close(model.score(test), (reconstruction - model.score_mean[0]) / model.score_std[0])


def test_the_statistics_come_from_the_training_images_given_to_end_epoch(tmp_path):
    model, algorithm = _trained()
    train, other = _images(12, seed=1), _images(12, seed=3) * 0.5  # other images, other error levels
    algorithm.end_epoch(train)
    model.eval()
    reconstruction, latent = _components_by_hand(model, train)
    torch.testing.assert_close(model.score_mean, torch.stack([reconstruction.mean(), latent.mean()]))
    torch.testing.assert_close(model.score_std, torch.stack([reconstruction.std(), latent.std()]))
    fitted = model.score_mean.clone(), model.score_std.clone()
    other_reconstruction, _ = _components_by_hand(model, other)
    assert not torch.isclose(other_reconstruction.mean(), fitted[0][0], rtol=0.05)  # the other images would differ

    # scoring and evaluating other (test) images never refits them
    from attn_ocgan.data.one_class import OneClassData
    from attn_ocgan.engine.evaluation import evaluate_model

    data = OneClassData(train=train, validation=_images(0), test=other, test_is_novel=torch.tensor([0, 1] * 6),
                        test_classes=torch.tensor([0, 1] * 6), normal_class=0, class_names=("a", "b"))
    metrics = evaluate_model(model, data, tmp_path)
    assert torch.equal(model.score_mean, fitted[0]) and torch.equal(model.score_std, fitted[1])
    assert set(metrics["auc_per_score_component"]) == {"reconstruction", "latent"}
    assert metrics["score_combination"]["component_mean"] == pytest.approx(fitted[0].tolist())
    # each raw component's mean per group (the copy check on real runs reads these)
    means = metrics["score_component_mean"]["reconstruction"]
    assert means["test_normal"] == pytest.approx(other_reconstruction[0::2].mean().item(), rel=1e-5)
    assert means["test_novel"] == pytest.approx(other_reconstruction[1::2].mean().item(), rel=1e-5)
    assert means["train_normal"] == pytest.approx(fitted[0][0].item(), rel=1e-5)
    assert (tmp_path / "residuals.png").is_file()

    # the statistics are buffers: a checkpoint carries them, and a rebuilt model scores the same
    assert {"score_mean", "score_std"} <= set(model.state_dict())
    rebuilt = _model()
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval().score(other), model.score(other))

    algorithm.end_epoch(other)  # the next epoch's call refits on whatever the trainer passes
    assert not torch.allclose(model.score_mean, fitted[0])


# -- training ----------------------------------------------------------------------------------
def _toy_images(n=16, seed=0):
    """Bright squares of random size and place on a dark background: structure a generator can learn."""
    generator = torch.Generator().manual_seed(seed)
    images = -torch.ones(n, 1, 32, 32)
    for image in images:
        size = int(torch.randint(6, 14, (1,), generator=generator))
        top, left = (int(v) for v in torch.randint(0, 32 - size, (2,), generator=generator))
        image[:, top:top + size, left:left + size] = 1.0
    return images


def test_a_few_training_steps_lower_the_contextual_loss():
    torch.manual_seed(0)
    model = _model()
    algorithm = SkipGANomalyAlgorithm(model, model.config, TrainConfig(lr=2e-3))  # 10x the default: 30 steps suffice
    images = _toy_images()
    contextual = [algorithm.train_step(images, epoch=0)["generator/contextual"] for _ in range(30)]
    assert all(math.isfinite(value) for value in contextual)
    assert sum(contextual[-3:]) / 3 < 0.3 * sum(contextual[:3]) / 3, contextual  # measured: 1.03 -> 0.15


def test_the_losses_have_the_papers_weights_and_the_discriminator_is_restarted_when_it_collapses():
    torch.manual_seed(0)
    model = _model()
    algorithm = SkipGANomalyAlgorithm(model, model.config, TrainConfig())
    logs = algorithm.train_step(_images(), epoch=0)
    assert logs["generator/total"] == pytest.approx(logs["generator/adversarial"] + 40 * logs["generator/contextual"]
                                                    + logs["generator/latent"], rel=1e-5)
    assert algorithm.discriminator_resets == 0  # BCE ~ 1.4, far above 1e-5
    convolutions = [p for p in model.discriminator.parameters() if p.dim() == 4]
    with torch.no_grad():
        for weight in convolutions:
            weight.fill_(0.05)  # recognisable weights; one Adam step moves each by about lr = 2e-4
    algorithm.train_step(_images(), epoch=0)
    assert all(abs(float(weight.detach().mean()) - 0.05) < 0.01 for weight in convolutions)  # kept: no collapse
    collapsed = SkipGANomalyAlgorithm(model, dataclasses.replace(model.config, reinit_discriminator_below=100.0), TrainConfig())
    collapsed.train_step(_images(), epoch=0)  # any loss is "below 100": the discriminator is restarted
    assert collapsed.discriminator_resets == 1
    assert all(abs(float(weight.detach().mean())) < 0.01 and abs(float(weight.detach().std()) - 0.02) < 0.005
               for weight in convolutions)  # drawn afresh from N(0, 0.02)


@pytest.mark.parametrize("args", [{"reconstruction_score_weight": 1.5}, {"contextual_weight": -1.0}, {"generator_width": 0}])
def test_out_of_range_options_are_one_line_user_errors(args):
    with pytest.raises(UserError, match=f"model option {next(iter(args))}="):
        SkipGANomalyConfig(**args)


def test_residual_panel_and_gradcam_head():
    model, _ = _trained()
    model.eval()
    images = _images(2)
    rows = model.figure_panels(images)["residuals"]
    assert [label for label, _ in rows] == ["input", "G(x)", "|x - G(x)|"]
    torch.testing.assert_close(rows[2][1], (images - model.reconstruct(images)).abs() - 1)
    head = model.gradcam_heads()["discriminator"]
    assert head(images).shape == (2,) and hasattr(head, "features")


# -- the copy check ----------------------------------------------------------------------------
def copy_check(run_dir, model: str = "skip-ganomaly", epochs: int = 2, model_args: dict | None = None,
               seed: int = 0, normal_class: int = 1) -> dict:
    """Train ``model`` on mnist5k digit ``normal_class`` for ``epochs`` epochs, then report the mean
    reconstruction error (mean (x - reconstruct(x))^2) of the normal and of the novel test images, their
    ratio, the AUC of that error alone and, for a model with score components, the AUC of each and of the
    score. For reference, the AUC of two reconstructions that learned nothing: the all-zero image (what
    an untrained tanh output is close to) and the all-background image (-1: the error is the ink)."""
    from attn_ocgan.data import load_one_class
    from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
    from attn_ocgan.engine.evaluation import auc, compute_scores
    from attn_ocgan.engine.trainer import train

    config = RunConfig(model=model, data=DataConfig(name="mnist5k", normal_class=normal_class),
                       train=TrainConfig(epochs=epochs, batch_size=64, seed=seed, eval_every=0),
                       model_args=dict(TINY if model_args is None else model_args))
    data = load_one_class(config.data)
    result = train(config, run_dir, data=data, progress=False)
    _, trained = model_from_checkpoint(read_checkpoint(result["checkpoint"]))
    trained.eval()
    with torch.no_grad():
        errors = torch.cat([(batch - trained.reconstruct(batch)).pow(2).flatten(1).mean(1)
                            for batch in data.test.split(500)]).double()
        train_errors = torch.cat([(batch - trained.reconstruct(batch)).pow(2).flatten(1).mean(1)
                                  for batch in data.train.split(500)]).double()
    novel = data.test_is_novel.bool()
    is_novel = data.test_is_novel.numpy()
    report = {"model": model, "normal_class": normal_class, "epochs": epochs, "model_args": config.model_args,
              "reconstruction_error": {"train_normal": float(train_errors.mean()), "test_normal": float(errors[~novel].mean()),
                                       "test_novel": float(errors[novel].mean())},
              "auc_reconstruction_error": auc(is_novel, errors.numpy())}
    report["novel_over_normal"] = report["reconstruction_error"]["test_novel"] / report["reconstruction_error"]["test_normal"]
    if trained.score_component_names:
        from attn_ocgan.engine.evaluation import scores_and_columns

        columns = scores_and_columns(trained, data.test)[1]
        report["auc_per_score_component"] = {name: auc(is_novel, values) for name, values in columns.items()}
    report["auc_score"] = auc(is_novel, compute_scores(trained, data.test))
    report["reference_auc"] = {"zero_output": auc(is_novel, data.test.pow(2).flatten(1).mean(1).numpy()),
                               "background_output": auc(is_novel, (data.test + 1).pow(2).flatten(1).mean(1).numpy())}
    return report


def test_copy_check_reports_the_errors_of_normal_and_novel_images(tmp_path):
    report = copy_check(tmp_path / "run", epochs=1)
    errors = report["reconstruction_error"]
    assert all(math.isfinite(value) and value > 0 for value in errors.values())
    assert set(report["auc_per_score_component"]) == {"reconstruction", "latent"}
    assert 0 <= report["auc_reconstruction_error"] <= 1
    # the reconstruction component is the same error the check measures by hand
    assert report["auc_per_score_component"]["reconstruction"] == pytest.approx(report["auc_reconstruction_error"], abs=1e-6)


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description="Skip-GANomaly copy check on mnist5k digit 1 (tiny widths).")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--width", type=int, default=8, help="generator and discriminator width")
    parser.add_argument("--normal-class", type=int, default=1)
    parser.add_argument("--compare-ganomaly", action="store_true", help="also run GANomaly (no skips) the same way")
    options = parser.parse_args()
    torch.set_num_threads(1)
    width = {"generator_width": options.width, "discriminator_width": options.width}
    runs = [("skip-ganomaly", width)]
    if options.compare_ganomaly:
        runs.append(("ganomaly", {**width, "latent_dim": 32}))
    with tempfile.TemporaryDirectory() as folder:
        for name, args in runs:
            print(json.dumps(copy_check(f"{folder}/{name}", name, options.epochs, args, normal_class=options.normal_class)))
