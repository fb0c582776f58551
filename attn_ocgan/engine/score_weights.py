"""Weights of a model's score components, chosen on the validation split (never test images).

For models whose score is a linear combination of z-normalised components
(``NoveltyModel.chooses_score_weights_on_validation``): the weights on a grid of the simplex
(non-negative, summing to 1, ``step`` apart) whose combination has the best AUC on held-out normal
training images vs training images of other classes. Ties go to the first weights in grid order.

``choose_pseudo_anomaly_weights`` is the strict one-class variant: the same grid search, with the
other classes replaced by pseudo-anomalies made from the normal images themselves (CutPaste
patches or shuffled tiles), so nothing but normal images is seen.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from ..data.pseudo_anomalies import PSEUDO_ANOMALIES, make_pseudo_anomalies
from .device import model_device


def simplex_grid(k: int, step: float = 0.1) -> np.ndarray:
    """(n, k): every vector of non-negative multiples of ``step`` that sums to 1."""
    parts = int(round(1 / step))
    rows = [c + (parts - sum(c),) for c in itertools.product(range(parts + 1), repeat=k - 1) if sum(c) <= parts]
    return np.array(rows, dtype=np.float64) / parts


def best_simplex_weights(z_columns: np.ndarray, is_novel: np.ndarray, step: float = 0.1) -> tuple[np.ndarray, float]:
    """(weights (K,), their AUC) maximising the AUC of ``z_columns @ weights`` over ``simplex_grid``."""
    grid = simplex_grid(z_columns.shape[1], step)
    scores = z_columns @ grid.T  # (N, n)
    aucs = [roc_auc_score(is_novel, scores[:, j]) for j in range(len(grid))]
    best = int(np.argmax(aucs))
    return grid[best], float(aucs[best])


@torch.inference_mode()
def normalised_components(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """(N, K): the model's score components of ``images``, z-normalised with its normal-training-image statistics."""
    model.eval()
    device = model_device(model)
    return torch.cat([model.normalise_score_components(model.score_components(images[start:start + batch_size].to(device))).cpu()
                      for start in range(0, len(images), batch_size)]).double().numpy()


PSEUDO_CHOICE_IMAGES = 1000  # normal images the pseudo-anomaly weights are chosen on, at most
PSEUDO_CHOICE_SEED = 0


def pseudo_choice_images(data) -> tuple[torch.Tensor, str]:
    """The normal images pseudo-anomaly weights are chosen on, and their description: the held-out
    validation normals when there is a hold-out (images the model never trained on), else a seeded
    subset of the normal training images; never test images, never images of another class."""
    if len(data.validation):
        return data.validation[:PSEUDO_CHOICE_IMAGES], f"{min(len(data.validation), PSEUDO_CHOICE_IMAGES)} held-out normal images"
    chosen = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(PSEUDO_CHOICE_SEED))[:PSEUDO_CHOICE_IMAGES]
    return data.train[chosen.sort().values], f"{len(chosen)} normal training images"


def choose_pseudo_anomaly_weights(model, normal_images: torch.Tensor, kind: str = "cutpaste", seed: int = 0,
                                  step: float = 0.1, normal_components: np.ndarray | None = None) -> tuple[dict[str, float], float]:
    """Weights chosen as ``choose_score_weights`` does, on ``normal_images`` vs pseudo-anomalies made
    from them (``data.pseudo_anomalies``): strict one-class, no image of another class. Returns the weights
    and the AUC they give on that pseudo task (how separable the pseudo-anomalies are, not a test AUC).
    ``normal_components``: ``normalised_components`` of ``normal_images`` when already computed
    (e.g. for another kind), so they are not scored again."""
    normal = normalised_components(model, normal_images) if normal_components is None else normal_components
    pseudo = normalised_components(model, make_pseudo_anomalies(normal_images, kind, torch.Generator().manual_seed(seed)))
    labels = np.r_[np.zeros(len(normal)), np.ones(len(pseudo))]
    weights, value = best_simplex_weights(np.concatenate([normal, pseudo]), labels, step)
    return dict(zip(model.score_component_names, weights.tolist())), value


@torch.inference_mode()
def choose_score_weights(model, images: torch.Tensor, is_novel: torch.Tensor, step: float = 0.1,
                         batch_size: int = 1000) -> tuple[dict[str, float], float]:
    """The model's component weights chosen on (images, is_novel), a validation split of training
    images, and the validation AUC they give. The model's normalisation statistics are its own
    (fitted on normal training images); only the weights are chosen here."""
    weights, value = best_simplex_weights(normalised_components(model, images, batch_size), is_novel.numpy(), step)
    return dict(zip(model.score_component_names, weights.tolist())), value
