"""Timing two step functions against each other on a machine whose load drifts."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def alternating_block_ratio(reference_step: Callable[[], object], model_step: Callable[[], object], steps: int,
                            repeats: int, images_per_step: int) -> dict:
    """Step-time ratio of ``model_step`` to ``reference_step``, timed in alternating blocks of ``steps``
    calls (reference, model, reference, model, ...) after one warm-up call of ``reference_step``, so
    that load drifting during the run hits both alike. The ratio is the median of the per-block ratios
    (one loaded block does not move it); the rates are images per second of the median block."""
    reference_step()  # warm-up
    reference_seconds, model_seconds = [], []
    for _ in range(repeats):
        for step, seconds in ((reference_step, reference_seconds), (model_step, model_seconds)):
            started = time.perf_counter()
            for _ in range(steps):
                step()
            seconds.append(time.perf_counter() - started)
    ratios = [model / reference for model, reference in zip(model_seconds, reference_seconds)]
    images = images_per_step * steps
    return {"reference_img_per_s": round(images / statistics.median(reference_seconds), 1),
            "model_img_per_s": round(images / statistics.median(model_seconds), 1),
            "ratio": round(statistics.median(ratios), 3), "ratios": [round(ratio, 3) for ratio in ratios]}
