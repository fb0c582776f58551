"""The guide's evidence in the score and the components' weights chosen on the validation split
(attn_ocgan/engine/score_weights.py, the attention model's guide_evidence_score / score_weights)."""
import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.data import load_one_class
from attn_ocgan.engine import trainer as trainer_module
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint
from attn_ocgan.data.pseudo_anomalies import make_pseudo_anomalies
from attn_ocgan.engine.score_weights import (best_simplex_weights, choose_pseudo_anomaly_weights, choose_score_weights,
                                             normalised_components, pseudo_choice_images, simplex_grid)
from attn_ocgan.engine.evaluation import evaluate_model
from attn_ocgan.errors import UserError
from attn_ocgan.protocol.reports.score_weightings import write_score_weightings
from attn_ocgan.registry import create_model, resolve_model_config
from tests.conftest import SMALL_MODEL_ARGS, untrained_checkpoint

ROTATION_EVIDENCE = {**SMALL_MODEL_ARGS["attn-ocgan"], "guide_task": "rotation", "guide_evidence_score": True, "score_weights": "fixed"}


def test_the_grid_covers_the_simplex_and_the_search_finds_the_informative_component():
    grid = simplex_grid(3, 0.25)
    assert len(grid) == 15 and np.allclose(grid.sum(1), 1) and (grid >= 0).all()
    generator = np.random.default_rng(0)
    is_novel = np.repeat([0, 1], 200)
    informative = is_novel * 1.0 + generator.normal(0, 1, 400)
    columns = np.stack([generator.normal(0, 1, 400), informative, generator.normal(0, 1, 400)], axis=1)
    weights, value = best_simplex_weights(columns, is_novel, step=0.1)
    assert weights.argmax() == 1 and weights[1] >= 0.7
    assert value >= roc_auc_score(is_novel, informative) - 1e-12  # the grid holds the informative column alone


def _rotation_model():
    config = resolve_model_config("attn-ocgan", "mnist5k", ROTATION_EVIDENCE, 1, 32)
    model = create_model("attn-ocgan", config).eval()
    model.masked_gan_steps.fill_(1)  # as after training: the masked GAN scores
    return model


def test_the_guide_evidence_enters_the_score_only_through_training_image_statistics():
    torch.manual_seed(0)
    model = _rotation_model()
    assert model.score_component_names == ("first_gan", "masked_gan", "guide_rotation_x", "guide_rotation_masked")
    train, test = torch.rand(40, 1, 32, 32) * 2 - 1, torch.rand(30, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        model.fit_score_statistics(train)
        train_components, test_components = model.score_components(train), model.score_components(test)
        torch.testing.assert_close(model.score_mean, train_components.mean(0))
        torch.testing.assert_close(model.score_std, train_components.std(0))
        z = (test_components - train_components.mean(0)) / train_components.std(0)
        # fixed weights: the two GANs as before, the guide's evidence weighted 0
        assert model.score_component_weights == {"first_gan": 0.5, "masked_gan": 0.5, "guide_rotation_x": 0.0,
                                                 "guide_rotation_masked": 0.0}
        torch.testing.assert_close(model.score(test), 0.5 * z[:, 0] + 0.5 * z[:, 1])
        model.set_score_component_weights({"first_gan": 0, "masked_gan": 0, "guide_rotation_x": 0.25, "guide_rotation_masked": 0.75})
        torch.testing.assert_close(model.score(test), 0.25 * z[:, 2] + 0.75 * z[:, 3])
        # the rotation NLL is the mean over the four quarter turns of -log p(turn | turned image)
        turned = torch.rot90(test[:1], 3, dims=(2, 3))
        nll_of_turn_3 = -torch.log_softmax(model.guide(turned), 1)[0, 3]
        per_turn = [-torch.log_softmax(model.guide(torch.rot90(test[:1], k, dims=(2, 3))), 1)[0, k] for k in range(4)]
        torch.testing.assert_close(model.rotation_nll(test[:1])[0], torch.stack(per_turn).mean())
        assert torch.isclose(per_turn[3], nll_of_turn_3)


def test_equal_weights_give_every_component_one_share_with_or_without_the_guide_evidence():
    torch.manual_seed(0)
    train, test = torch.rand(40, 1, 32, 32) * 2 - 1, torch.rand(30, 1, 32, 32) * 2 - 1
    for evidence in (True, False):
        args = {**ROTATION_EVIDENCE, "guide_evidence_score": evidence, "score_weights": "equal", "masked_score_weight": 0.9}
        model = create_model("attn-ocgan", resolve_model_config("attn-ocgan", "mnist5k", args, 1, 32)).eval()
        model.masked_gan_steps.fill_(1)
        with torch.no_grad():
            model.fit_score_statistics(train)
            z = model.normalise_score_components(model.score_components(test))
            k = 4 if evidence else 2
            assert model.score_component_weights == pytest.approx({name: 1 / k for name in model.score_component_names})
            torch.testing.assert_close(model.score(test), z.mean(1))  # masked_score_weight plays no part


def test_guide_evidence_needs_the_rotation_guide():
    with pytest.raises(UserError, match="guide_evidence_score needs guide_task=rotation"):
        resolve_model_config("attn-ocgan", "mnist5k", {"guide_task": "pseudo_anomaly", "guide_evidence_score": True}, 1, 32)


def _config(**data) -> RunConfig:
    return RunConfig(model="attn-ocgan", data=DataConfig(name="mnist5k", normal_class=1, **{"val_fraction": 0.1, "val_novel": 100, **data}),
                     train=TrainConfig(epochs=2, batch_size=64, eval_every=0, select_epoch="validation"),
                     model_args={**ROTATION_EVIDENCE, "score_weights": "validation"})


def test_the_trainer_chooses_the_weights_on_the_validation_split_and_saves_them(tmp_path):
    result = trainer_module.train(_config(), tmp_path / "run", progress=False)
    _, model = model_from_checkpoint(read_checkpoint(result["checkpoint"]))
    weights = model.score_component_weights
    assert set(weights) == set(model.score_component_names) and abs(sum(weights.values()) - 1) < 1e-6
    data = load_one_class(_config().data)
    images, is_novel = data.validation_set()
    again, _ = choose_score_weights(model, images, is_novel)  # the same split gives the same choice
    assert again == pytest.approx(weights)
    trace = trainer_module.read_validation_trace(tmp_path / "run")
    assert trace[-1]["score_weights"] == pytest.approx(weights)
    # the weightings report re-scores the checkpoint: its trained weights give the model's own AUC,
    # equal weights the AUC of the mean z-score
    rows = write_score_weightings(tmp_path / "weightings.md", "cmd", [result["checkpoint"]], progress=False)
    model_auc = evaluate_model(model, data)["auc"]
    with torch.no_grad():
        z = model.normalise_score_components(model.score_components(data.test)).numpy()
    assert rows[0].trained == pytest.approx(model_auc, abs=1e-6)
    assert rows[0].equal == pytest.approx(roc_auc_score(data.test_is_novel.numpy(), z.mean(1)), abs=1e-6)
    assert rows[0].trained_weights == pytest.approx(weights) and rows[0].class_name == data.class_names[1]
    text = (tmp_path / "weightings.md").read_text()
    assert f"{rows[0].equal:.4f}" in text and "guide_rotation_masked alone" in text
    # pseudo-anomaly weights: chosen on the held-out normal images (never test images), then scored on the test set
    assert rows[0].pseudo_images == f"{len(data.validation)} held-out normal images"
    for kind in ("cutpaste", "shuffle"):
        chosen, _ = choose_pseudo_anomaly_weights(model, data.validation, kind)
        assert rows[0].pseudo_weights[kind] == pytest.approx(chosen)
        combined = z @ np.array([chosen[name] for name in model.score_component_names])
        assert rows[0].pseudo[kind] == pytest.approx(roc_auc_score(data.test_is_novel.numpy(), combined), abs=1e-6)
        assert f"{rows[0].pseudo[kind]:.4f}" in text


def test_pseudo_anomaly_weights_are_chosen_by_the_trainer_from_normal_training_images_alone(tmp_path, monkeypatch):
    """score_weights=pseudo-cutpaste: no split, no other class; the weights saved with the checkpoint
    are the grid choice on a seeded subset of the normal training images vs their CutPaste copies,
    chosen once (after the last epoch: with --select-epoch last no earlier epoch is scored)."""
    config = dataclasses.replace(_config(val_fraction=0.0, val_novel=0), train=TrainConfig(epochs=2, batch_size=64, eval_every=0),
                                 model_args={**ROTATION_EVIDENCE, "score_weights": "pseudo-cutpaste"})
    choices = []
    choose = trainer_module._chosen_score_weights
    monkeypatch.setattr(trainer_module, "_chosen_score_weights", lambda *args: choices.append(1) or choose(*args))
    result = trainer_module.train(config, tmp_path / "run", progress=False)
    assert len(choices) == 1
    _, model = model_from_checkpoint(read_checkpoint(result["checkpoint"]))
    assert model.score_weight_pseudo_anomalies == "cutpaste"
    data = load_one_class(config.data)
    images, described = pseudo_choice_images(data)
    assert described == f"{min(len(data.train), 1000)} normal training images"
    assert all(any(torch.equal(image, other) for other in data.train) for image in images[:20])
    chosen, _ = choose_pseudo_anomaly_weights(model, images, "cutpaste")
    assert model.score_component_weights == pytest.approx(chosen)
    assert chosen != pytest.approx(model.fixed_component_weights)  # a choice was made, not the start values kept


def test_validation_weights_need_a_validation_split(tmp_path):
    config = dataclasses.replace(_config(val_fraction=0.0), train=TrainConfig(epochs=1, batch_size=64, eval_every=0))
    with pytest.raises(UserError, match="choose its score weights on a validation split"):
        trainer_module.train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model,refusal", [("ocgan", "ocgan checkpoint whose score has no components"),
                                           ("fanogan", "fixed sum of raw components (pixel, feature)")])
def test_score_weightings_refuses_a_model_without_components_to_reweight_and_writes_nothing(model, refusal, tmp_path, capsys,
                                                                                           monkeypatch):
    from attn_ocgan.cli import main
    from attn_ocgan.protocol.reports import score_weightings

    def never_scored(*args, **kwargs):
        raise AssertionError("every checkpoint is checked before any is scored")

    monkeypatch.setattr(score_weightings, "weighting_row", never_scored)

    checkpoint = untrained_checkpoint(model, tmp_path / "last.pt")  # refused before anything is scored
    out = tmp_path / "weightings.md"
    assert main(["report", "score-weightings", "--out", str(out), str(checkpoint)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error: " in line]  # beside the progress bar
    assert len(errors) == 1 and refusal in errors[0]
    assert not out.exists()


def test_pseudo_anomalies_rearrange_each_image_and_are_seeded():
    images = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    for kind in ("cutpaste", "shuffle"):
        corrupted = make_pseudo_anomalies(images, kind, torch.Generator().manual_seed(3))
        assert not torch.equal(corrupted, images)
        torch.testing.assert_close(corrupted, make_pseudo_anomalies(images, kind, torch.Generator().manual_seed(3)))
        for index in range(2):  # every pixel comes from the same image: nothing of another image is seen
            assert set(corrupted[index].flatten().tolist()) <= set(images[index].flatten().tolist())
    shuffled = make_pseudo_anomalies(images, "shuffle", torch.Generator().manual_seed(3), shuffle_patch=8)
    assert torch.equal(shuffled.flatten(1).sort(1).values, images.flatten(1).sort(1).values)  # a permutation of tiles
    with pytest.raises(ValueError, match="unknown pseudo-anomaly"):
        make_pseudo_anomalies(images, "rotate")


class _EdgeAndNoise(torch.nn.Module):
    """Two components: the images' edge energy (pasted or shuffled pieces of a smooth image add
    edges) and seeded noise that tells nothing."""

    score_component_names = ("edges", "noise")

    def score_components(self, images):
        edges = (images[..., 1:] - images[..., :-1]).abs().flatten(1).sum(1) + (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).sum(1)
        noise = torch.randn(len(images), generator=torch.Generator().manual_seed(len(images)))
        return torch.stack([edges, noise], 1)

    def normalise_score_components(self, components):  # both on a comparable scale, as z-scores would be
        return components * torch.tensor([0.01, 1.0])


def test_pseudo_anomaly_weights_go_to_the_component_that_sees_the_pseudo_anomalies():
    offsets = torch.rand(64, 1, 1, 1, generator=torch.Generator().manual_seed(0))  # the same smooth ramp, shifted
    smooth = torch.linspace(-1, 1, 32).view(1, 1, 1, 32) + torch.linspace(-1, 1, 32).view(1, 1, 32, 1) + offsets
    for kind in ("cutpaste", "shuffle"):
        weights, pseudo_auc = choose_pseudo_anomaly_weights(_EdgeAndNoise(), smooth, kind)
        assert weights["edges"] >= 0.7 and pseudo_auc > 0.8
        given = normalised_components(_EdgeAndNoise(), smooth)  # scored once, shared by the kinds: the same choice
        assert choose_pseudo_anomaly_weights(_EdgeAndNoise(), smooth, kind, normal_components=given) == (weights, pseudo_auc)
