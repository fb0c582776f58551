"""Complexity calibration (attn_ocgan/engine/calibration.py); its report is tested in test_complexity_report.py."""

import numpy as np
import pytest
import torch

from attn_ocgan.engine.calibration import ComplexityCalibration, image_complexity, z_combination
from attn_ocgan.engine.evaluation import auc
from attn_ocgan.errors import UserError


def test_complexity_is_the_total_variation_per_pixel():
    stripes = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # no vertical change, horizontal steps of 1
    flat = torch.full((1, 3, 8, 8), 0.3)
    noise = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ramp = torch.linspace(0, 1, 8).expand(1, 3, 8, 8)
    values = image_complexity(torch.cat([flat, noise, ramp]))
    assert image_complexity(stripes).tolist() == [1.0]
    assert values[0] == 0 and values[1] > values[2] > 0 and values.shape == (3,)


def _synthetic(normal_range, novel_range, novel_factor, n=2000, seed=0):
    """Scores = complexity ** 1.5 * lognormal noise, novel ones times ``novel_factor``."""
    rng = np.random.default_rng(seed)
    train_c, normal_c, novel_c = rng.uniform(*normal_range, n), rng.uniform(*normal_range, n), rng.uniform(*novel_range, n)
    noise = lambda: np.exp(0.1 * rng.standard_normal(n))  # noqa: E731
    train_s, normal_s, novel_s = train_c ** 1.5 * noise(), normal_c ** 1.5 * noise(), novel_factor * novel_c ** 1.5 * noise()
    is_novel = np.r_[np.zeros(n), np.ones(n)]
    return train_s, train_c, np.r_[normal_s, novel_s], np.r_[normal_c, novel_c], is_novel


def test_calibration_removes_a_score_that_is_only_complexity():
    train_s, train_c, scores, complexity, is_novel = _synthetic((0.1, 0.3), (0.2, 0.6), novel_factor=1.0)
    calibration = ComplexityCalibration.fit(train_s, train_c)
    assert calibration.slope == pytest.approx(1.5, abs=0.05) and calibration.correlation > 0.9
    assert auc(is_novel, scores) > 0.8  # raw: novel only because more detailed
    assert abs(auc(is_novel, calibration(scores, complexity)) - 0.5) < 0.04


def test_calibration_recovers_novelty_hidden_by_lower_complexity():
    # novel images are smoother (raw score inverted) but reconstructed 1.5x worse at equal complexity
    train_s, train_c, scores, complexity, is_novel = _synthetic((0.3, 0.6), (0.1, 0.35), novel_factor=1.5)
    calibration = ComplexityCalibration.fit(train_s, train_c)
    assert auc(is_novel, scores) < 0.3
    assert auc(is_novel, calibration(scores, complexity)) > 0.95


def test_calibrated_score_is_the_residual_and_the_combination_matches_the_models():
    calibration = ComplexityCalibration.fit(np.array([np.e, np.e ** 3, np.e ** 5]), np.array([np.e, np.e ** 2, np.e ** 3]))
    assert (calibration.intercept, calibration.slope) == pytest.approx((-1.0, 2.0))  # log s = 2 log c - 1 exactly
    assert calibration(np.array([np.e ** 4]), np.array([np.e ** 2])) == pytest.approx([1.0])  # 4 - (2 * 2 - 1)
    train = {"first_gan": np.array([1.0, 2.0, 3.0]), "masked_gan": np.array([10.0, 10.0, 40.0])}
    test = {"first_gan": np.array([4.0]), "masked_gan": np.array([40.0])}
    # z = (4 - 2) / 1 = 2 and (40 - 20) / sqrt(300) (unbiased std, as torch.std in fit_score_statistics)
    assert z_combination(test, train, {"first_gan": 0.75, "masked_gan": 0.25}) == pytest.approx([0.75 * 2 + 0.25 * 20 / np.sqrt(300)])


class _TwoComponents:
    """The scoring interface complexity_metrics reads: two components and how the score combines them."""
    score_component_names = ("pixel", "feature")
    score_component_weights = {"pixel": 1.0, "feature": 3.0}

    def __init__(self, normalised: bool):
        self.score_components_normalised = normalised


def test_a_fixed_sum_of_raw_components_is_calibrated_as_one_score_and_a_z_combination_per_component():
    from attn_ocgan.engine.evaluation import complexity_metrics

    generator = torch.Generator().manual_seed(0)
    smoothness = torch.rand(60, 1, 1, 1, generator=generator)  # images from flat to noisy
    images = torch.rand(60, 1, 8, 8, generator=generator) * 2 * smoothness - smoothness
    train_images, test_images = images[:30], images[30:]
    rng = np.random.default_rng(1)
    train, test = ({"pixel": rng.uniform(0.1, 1, 30), "feature": rng.uniform(0.1, 1, 30) ** 3} for _ in range(2))
    is_novel = np.r_[np.zeros(15), np.ones(15)]
    train_c, test_c = image_complexity(train_images), image_complexity(test_images)

    raw_sum = complexity_metrics(_TwoComponents(False), train, test, train_images, test_images, is_novel)
    summed = lambda columns: columns["pixel"] + 3.0 * columns["feature"]  # noqa: E731
    expected = auc(is_novel, ComplexityCalibration.fit(summed(train), train_c)(summed(test), test_c))
    assert raw_sum["auc_calibrated"] == pytest.approx(expected)
    assert raw_sum["auc_calibrated_per_column"]["score"] == pytest.approx(expected)
    assert set(raw_sum["auc_calibrated_per_column"]) == {"pixel", "feature", "score"}

    z_combined = complexity_metrics(_TwoComponents(True), train, test, train_images, test_images, is_novel)
    calibrated = {name: ComplexityCalibration.fit(train[name], train_c) for name in train}
    expected = auc(is_novel, z_combination({name: calibrated[name](test[name], test_c) for name in test},
                                           {name: calibrated[name](train[name], train_c) for name in train},
                                           _TwoComponents.score_component_weights))
    assert z_combined["auc_calibrated"] == pytest.approx(expected)
    assert z_combined["auc_calibrated"] != pytest.approx(raw_sum["auc_calibrated"])  # the two rules differ here
    assert set(z_combined["auc_calibrated_per_column"]) == {"pixel", "feature"}


def test_non_positive_scores_and_degenerate_fits_are_one_line_errors():
    with pytest.raises(UserError, match="positive scores"):
        ComplexityCalibration.fit(np.array([1.0, 0.0, 2.0]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(UserError, match="different complexity"):
        ComplexityCalibration.fit(np.array([1.0, 2.0, 3.0]), np.full(3, 0.2))
    with pytest.raises(UserError, match="two vectors"):
        ComplexityCalibration(0.0, 1.0, 1.0)(np.ones(3), np.ones(4))
