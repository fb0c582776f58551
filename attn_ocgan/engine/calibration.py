"""Complexity calibration of a novelty score: remove the part that image detail alone explains.

Reconstruction errors rank images by how much detail they hold, whatever their class (Serrà et al.,
*Input complexity and out-of-distribution detection with likelihood-based generative models*, ICLR
2020, show the same for likelihoods). On CIFAR-10 a class with more detail than the average other
class (automobile, truck) is then scored as *more* novel than the other classes: AUC below 0.5.

The calibration fits ``log score = a + b * log complexity`` by least squares on the normal
**training** images only and scores the residual ``log score - (a + b * log complexity)``: how much
worse an image is explained than normal images of the same complexity. It needs positive scores
(reconstruction errors, latent distances).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

COMPLEXITY_FLOOR = 1e-6  # a flat image has complexity 0; its log must stay finite


@torch.no_grad()
def image_complexity(images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """(N,) for images (N, C, H, W) on any device: the mean absolute difference of vertically
    neighbouring pixels plus that of horizontally neighbouring ones (each averaged over channels
    and positions), i.e. the total variation per pixel. A flat image scores 0 and is floored at
    ``COMPLEXITY_FLOOR`` before the log, so a class with many flat images fits a steeper line."""
    values = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].float()
        vertical = (batch[..., 1:, :] - batch[..., :-1, :]).abs().flatten(1).mean(1)
        horizontal = (batch[..., :, 1:] - batch[..., :, :-1]).abs().flatten(1).mean(1)
        values.append((vertical + horizontal).double().cpu())
    return torch.cat(values).numpy() if values else np.zeros(0)


def _logs(scores, complexity, what: str) -> tuple[np.ndarray, np.ndarray]:
    scores, complexity = np.asarray(scores, dtype=np.float64), np.asarray(complexity, dtype=np.float64)
    if scores.shape != complexity.shape or scores.ndim != 1:
        raise UserError(f"{what}: scores {scores.shape} and complexities {complexity.shape} must be two vectors of one length")
    if not np.all(scores > 0):
        raise UserError(f"{what}: complexity calibration needs positive scores (reconstruction errors, distances); "
                        f"got a minimum of {scores.min():.3g}")
    return np.log(scores), np.log(np.maximum(complexity, COMPLEXITY_FLOOR))


@dataclass(frozen=True)
class ComplexityCalibration:
    intercept: float
    slope: float
    correlation: float  # of log score and log complexity on the images it was fitted on

    @classmethod
    def fit(cls, train_scores, train_complexity) -> "ComplexityCalibration":
        """Least squares on normal *training* images (never test data)."""
        log_scores, log_complexity = _logs(train_scores, train_complexity, "fitting the calibration")
        if len(log_scores) < 3 or np.ptp(log_complexity) == 0:
            raise UserError("fitting the calibration needs at least 3 training images of different complexity")
        if np.ptp(log_scores) == 0:
            raise UserError("fitting the calibration needs training scores that vary; all are equal")
        slope, intercept = np.polyfit(log_complexity, log_scores, 1)
        return cls(float(intercept), float(slope), float(np.corrcoef(log_complexity, log_scores)[0, 1]))

    def __call__(self, scores, complexity) -> np.ndarray:
        """Calibrated scores (N,): the residual of the fitted line; higher = more novel."""
        log_scores, log_complexity = _logs(scores, complexity, "calibrating scores")
        return log_scores - (self.intercept + self.slope * log_complexity)


def z_combination(columns: dict[str, np.ndarray], train_columns: dict[str, np.ndarray],
                  weights: dict[str, float]) -> np.ndarray:
    """A model's linear combination of its score components (``score_component_weights``, e.g. the
    attention model's ``1 - w`` first GAN and ``w`` masked GAN): each column z-normalised with its
    training-image mean and std, then weighted and summed."""
    return sum(weight * (columns[name] - train_columns[name].mean()) / max(float(train_columns[name].std(ddof=1)), 1e-8)
               for name, weight in weights.items())


def weighted_sum(columns: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """A model's fixed sum of its raw score components (``score_components_normalised`` False, e.g.
    f-AnoGAN's pixel + kappa x feature residual): the score itself, as ``combine_score_components`` gives it."""
    return sum(weight * columns[name] for name, weight in weights.items())


def calibrate_columns(train_columns: dict[str, np.ndarray], test_columns: dict[str, np.ndarray],
                      train_images: torch.Tensor, test_images: torch.Tensor):
    """Calibrate every named score column against the complexity of its images.

    Returns (calibrated train columns, calibrated test columns, fitted calibrations); each fit uses
    the training column only."""
    train_complexity, test_complexity = image_complexity(train_images), image_complexity(test_images)
    calibrations = {name: ComplexityCalibration.fit(scores, train_complexity) for name, scores in train_columns.items()}
    train_calibrated = {name: calibrations[name](scores, train_complexity) for name, scores in train_columns.items()}
    test_calibrated = {name: calibrations[name](scores, test_complexity) for name, scores in test_columns.items()}
    return train_calibrated, test_calibrated, calibrations
