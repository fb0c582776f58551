"""Decisions from scores: thresholds stored with the model.

After training, each final checkpoint keeps the scores of normal images the model did not judge
during training when there are any (the validation split's held-out normal training images), else
of the normal training images (``NORMAL_SCORES``). A threshold is then ``auto`` (the
``AUTO_QUANTILE`` quantile of those scores: about 1 % of normal images flagged), a quantile
``qX`` of them, or a plain number.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

NORMAL_SCORES = "normal_scores"  # checkpoint key: {"source": str, "scores": float32 tensor (N,), sorted}
AUTO_QUANTILE = 0.99


@dataclass(frozen=True)
class ThresholdSpec:
    text: str
    quantile: float | None = None  # auto / qX
    value: float | None = None  # a number

    @property
    def needs_normal_scores(self) -> bool:
        return self.quantile is not None


def parse_threshold(text: str) -> ThresholdSpec:
    """'auto', 'q0.995' (a quantile of the stored normal scores) or a number; else a one-line UserError."""
    text = str(text).strip()
    if text == "auto":
        return ThresholdSpec(text, quantile=AUTO_QUANTILE)
    try:
        if text.startswith("q"):
            quantile = float(text[1:])
            if not 0.0 < quantile < 1.0:
                raise ValueError
            return ThresholdSpec(text, quantile=quantile)
        value = float(text)
        if not np.isfinite(value):
            raise ValueError
        return ThresholdSpec(text, value=value)
    except ValueError:
        raise UserError(f"--threshold {text!r} is not 'auto', a quantile such as q0.995 (0 < q < 1) or a number") from None


def normal_scores(payload: dict) -> dict | None:
    return payload.get(NORMAL_SCORES)


def resolve_threshold(spec: ThresholdSpec, payload: dict, checkpoint: str | Path = "the checkpoint") -> tuple[float, str]:
    """(threshold value, how it was chosen, in words) for a checkpoint payload."""
    if spec.value is not None:
        return spec.value, f"{spec.value:g} (given)"
    stored = normal_scores(payload)
    if stored is None:
        from .checkpoint import unfinished_training

        progress = unfinished_training(payload)
        if progress:
            raise UserError(f"{checkpoint} is from {progress}: a run stores the scores of normal images a threshold "
                            "needs when its training ends; finish it (attn-ocgan train --resume --out RUN_FOLDER) "
                            "or pass --threshold NUMBER")
        raise UserError(f"{checkpoint} stores no scores of normal images (written before thresholds existed); "
                        "pass --threshold NUMBER, or train it again")
    value = float(np.quantile(stored["scores"].double().numpy(), spec.quantile))
    return value, f"{value:.6g} (the {spec.quantile:g} quantile of the scores of {len(stored['scores'])} {stored['source']})"


def decision_metrics(is_novel: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall and F1 of 'anomalous' = score > threshold (novel = positive), and the share flagged."""
    from sklearn.metrics import precision_recall_fscore_support

    predicted = np.asarray(scores) > threshold
    precision, recall, f1, _ = precision_recall_fscore_support(np.asarray(is_novel), predicted, average="binary",
                                                               zero_division=0)
    return {"threshold": float(threshold), "precision": float(precision), "recall": float(recall), "f1": float(f1),
            "flagged": float(predicted.mean()) if len(predicted) else 0.0}


def reference_scores(model, data) -> tuple[torch.Tensor, str]:
    """The scores to store with a final checkpoint: the validation split's normal images when there
    are any, else (a seeded subset of, for expensive scorers) the normal training images. The global
    random state is left as it was (some scorers draw random numbers)."""
    from .evaluation import compute_scores, train_statistics_images

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        if len(data.validation):
            images, source = data.validation, "held-out normal training images (validation split)"
        else:
            images, source = data.train, "normal training images"
        scores = torch.from_numpy(compute_scores(model, train_statistics_images(model, images))).float()
    return scores.sort().values, source
