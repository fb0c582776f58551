"""ROC AUC of novelty scores, refusing non-finite scores (a diverged model) with a clear message."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from ..errors import UserError


class NonFiniteScores(UserError):
    """The model gives NaN or infinite scores (e.g. a diverged model): no AUC is computed."""


def check_finite_scores(scores: np.ndarray, what: str) -> None:
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise NonFiniteScores(f"the model gives non-finite novelty scores for {bad} of {len(scores)} {what} (a diverged "
                              "model?); no AUC was computed; retrain it, e.g. with a lower --lr")


def auc(is_novel, scores) -> float:
    """ROC AUC with novel = positive class and higher score = more novel (NonFiniteScores for NaN/inf)."""
    scores = np.asarray(scores)
    check_finite_scores(scores, "images")
    return float(roc_auc_score(np.asarray(is_novel), scores))
