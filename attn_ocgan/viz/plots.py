"""Matplotlib figures written atomically (Agg backend, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ..engine.io import atomic_path  # noqa: E402


def _save(figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def save_roc_curve(path: Path, is_novel, scores, auc_value: float, title: str = "") -> None:
    false_positive, true_positive, _ = roc_curve(is_novel, scores)
    figure, axis = plt.subplots(figsize=(4.2, 4.2))
    axis.plot(false_positive, true_positive, lw=2, label=f"AUC = {auc_value:.4f}")
    axis.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    axis.set(xlabel="false positive rate (normal flagged novel)", ylabel="true positive rate (novel detected)", title=title or "ROC")
    axis.legend(loc="lower right")
    _save(figure, path)


def save_score_histogram(path: Path, groups: dict[str, np.ndarray], title: str = "") -> None:
    """Overlaid, density-normalised histograms of novelty scores per group (log-spaced bins)."""
    values = np.concatenate([v for v in groups.values() if len(v)])
    low, high = max(values.min(), 1e-8), max(values.max(), 2e-8)
    bins = np.geomspace(low, high * 1.0001, 50)
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for name, group in groups.items():
        if len(group):
            axis.hist(np.clip(group, low, None), bins=bins, density=True, alpha=0.5, label=f"{name} (n={len(group)})")
    axis.set_xscale("log")
    axis.set(xlabel="novelty score (reconstruction MSE)", ylabel="density", title=title or "score distribution")
    axis.legend()
    _save(figure, path)
