"""Scores -> ROC AUC over the whole test set (scikit-learn), plus plots and metrics.json."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from ..errors import UserError
from .auc import auc, check_finite_scores
from .calibration import calibrate_columns, image_complexity, weighted_sum, z_combination
from .device import model_device
from .mask_diagnostics import evidence_aucs, mask_pass
from ..utils.io import atomic_write_json


@torch.inference_mode()
def compute_scores(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Novelty scores (N,) for float images (N, C, H, W) on any device; each batch is moved to the
    model's device. The model is put in eval mode."""
    model.eval()
    if len(images) == 0:
        return np.zeros(0, dtype=np.float64)
    device = model_device(model)
    scores = [model.score(images[start:start + batch_size].to(device)).cpu() for start in batch_starts(len(images), batch_size)]
    return torch.cat(scores).double().numpy()


SCORING_BAR_DELAY_S = 10.0


def batch_starts(n: int, batch_size: int):
    """The first index of each batch, with a progress bar that appears only when scoring takes longer
    than SCORING_BAR_DELAY_S (AnoGAN's latent search: about a minute a batch on a CPU)."""
    return tqdm(range(0, n, batch_size), desc=f"scoring {n} images", unit="batch", leave=False,
                delay=SCORING_BAR_DELAY_S, dynamic_ncols=True)


def evaluate_model(model, data, out_dir: Path | None = None, title: str = "", threshold: tuple[float, str] | None = None) -> dict:
    """Score train-normal and test images; write metrics.json, roc.png and score_histogram.png to ``out_dir``.

    Besides the AUC: AUC per novel class, per score component (models with ``score_component_names``),
    the complexity diagnostic (``complexity_metrics``), the model's ``diagnostics`` and, for models
    with ``attention_maps``, mask statistics; each of the model's ``figure_panels`` as ``<name>.png``."""
    test_scores, test_columns = scores_and_columns(model, data.test)
    train_images = train_statistics_images(model, data.train)
    train_scores, train_columns = scores_and_columns(model, train_images)
    check_finite_scores(test_scores, "test images")
    check_finite_scores(train_scores, "normal training images")
    is_novel = data.test_is_novel.numpy()
    metrics = {
        "auc": auc(is_novel, test_scores),
        "normal_class": data.normal_class,
        "normal_class_name": data.class_names[data.normal_class],
        "n_test": int(len(is_novel)),
        "n_test_novel": int(is_novel.sum()),
        "n_train": int(len(data.train)),
        "n_train_scored": int(len(train_scores)),
        "score_mean": {
            "train_normal": float(train_scores.mean()),
            "test_normal": float(test_scores[is_novel == 0].mean()),
            "test_novel": float(test_scores[is_novel == 1].mean()),
        },
        "auc_per_novel_class": {
            data.class_names[c]: auc(is_novel[(data.test_classes.numpy() == c) | (is_novel == 0)],
                                     test_scores[(data.test_classes.numpy() == c) | (is_novel == 0)])
            for c in sorted(set(data.test_classes.tolist())) if c != data.normal_class
        },
    }
    if data.known_anomaly_classes:  # --known-anomalies: seen and unseen anomaly classes apart
        metrics.update(seen_unseen_aucs(is_novel, test_scores, data.test_classes.numpy(), data.known_anomaly_classes,
                                        data.class_names))
    if threshold is not None:
        from .thresholds import decision_metrics

        metrics["decision"] = {**decision_metrics(is_novel, test_scores, threshold[0]), "chosen": threshold[1]}
    if model.score_component_names:
        metrics["auc_per_score_component"] = {name: auc(is_novel, scores) for name, scores in test_columns.items()}
        metrics["score_component_mean"] = {  # raw, before normalisation: e.g. does a U-Net copy novel images?
            name: {"train_normal": float(train_columns[name].mean()) if len(train_columns[name]) else None,
                   "test_normal": float(scores[is_novel == 0].mean()), "test_novel": float(scores[is_novel == 1].mean())}
            for name, scores in test_columns.items()}
    metrics["complexity"] = complexity_metrics(model, train_columns, test_columns, train_images, data.test, is_novel)
    metrics.update(model.diagnostics())
    if getattr(data, "test_masks", None) is not None:  # ground-truth anomaly masks (industrial layout)
        metrics["pixel_auc"] = pixel_aucs(model, data.test, data.test_masks)
    train_masks = mask_pass(model, data.train, {"train_normal": np.ones(len(data.train), dtype=bool)})
    if train_masks is not None:  # one pass over each image set; the normal training masks are the template
        test_masks = mask_pass(model, data.test, {"test_normal": is_novel == 0, "test_novel": is_novel == 1},
                               template=train_masks.template)
        metrics["masks"] = {**train_masks.statistics, **test_masks.statistics}
        metrics["mask_aucs"] = evidence_aucs(test_masks, data.test, is_novel)
    if out_dir is not None:
        from ..viz.plots import save_roc_curve, save_score_histogram

        out_dir = Path(out_dir)
        save_roc_curve(out_dir / "roc.png", is_novel, test_scores, metrics["auc"], title)
        save_score_histogram(
            out_dir / "score_histogram.png",
            {"train normal": train_scores, "test normal": test_scores[is_novel == 0], "test novel": test_scores[is_novel == 1]},
            title, model.score_name,
        )
        metrics["figures"] = [path.name for path in save_panel_figures(out_dir, model, data, title)]
        atomic_write_json(out_dir / "metrics.json", metrics)
    return metrics


@torch.inference_mode()
def anomaly_maps(model, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
    """Per-pixel evidence (N, 1, H, W), higher = more anomalous: ``residual`` (squared reconstruction
    error, mean over channels) where the model reconstructs, ``attention`` (the mask) where it has one."""
    model.eval()
    device = model_device(model)
    maps: dict[str, list] = {}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        reconstruction = model.reconstruct(batch)
        if reconstruction is not None:
            maps.setdefault("residual", []).append((batch - reconstruction).pow(2).mean(1, keepdim=True).cpu())
        attention = model.attention_maps(batch)
        if attention is not None:
            maps.setdefault("attention", []).append(attention.cpu())
    return {name: torch.cat(parts) for name, parts in maps.items()}


def pixel_aucs(model, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float | None]:
    """Pixel-level AUROC of each of the model's ``anomaly_maps`` against ground-truth masks (N, 1, H, W)
    in {0, 1}, over every pixel of every test image (None when the masks hold a single class)."""
    truth = masks.flatten().numpy() > 0.5
    if truth.all() or not truth.any():
        return {name: None for name in anomaly_maps(model, images[:1])}
    return {name: float(roc_auc_score(truth, values.flatten().double().numpy()))
            for name, values in anomaly_maps(model, images).items()}


def seen_unseen_aucs(is_novel: np.ndarray, scores: np.ndarray, classes: np.ndarray, seen: tuple[int, ...],
                     class_names) -> dict:
    """AUC of normal test images against the test images of the anomaly classes seen in training
    (``--known-anomalies``), and against those of the unseen classes."""
    is_seen = np.isin(classes, seen)
    result = {"known_anomaly_classes": [class_names[c] for c in seen]}
    for name, chosen in (("auc_seen_anomalies", is_seen), ("auc_unseen_anomalies", ~is_seen & (is_novel == 1))):
        keep = chosen | (is_novel == 0)
        result[name] = auc(is_novel[keep], scores[keep]) if chosen.any() else None
    return result


TRAIN_STATISTICS_SEED = 0


def train_statistics_images(model, train: torch.Tensor) -> torch.Tensor:
    """The normal training images whose scores the statistics (score mean, histogram, complexity
    diagnostic) are computed on: all of them, or, for a model whose scoring is expensive (it sets
    ``train_statistics_images``, e.g. AnoGAN's per-image latent search), a subset of that many drawn
    with a fixed seed. The test AUC never depends on it."""
    limit = getattr(model, "train_statistics_images", None)  # a NoveltyModel capability; None for plain modules
    if limit is None or len(train) <= limit:
        return train
    chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(TRAIN_STATISTICS_SEED))[:limit]
    return train[chosen.sort().values]


@torch.inference_mode()
def scores_and_columns(model, images: torch.Tensor, batch_size: int = 1000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scores (N,) and the columns they are made of, in one pass over ``images``: the raw errors named
    ``score_component_names`` (e.g. ``first_gan`` and ``masked_gan``), whose combination is the score
    (``combine_score_components``, as the model's ``score`` does); else ``score`` (the scores themselves)."""
    names = model.score_component_names
    if not names:
        scores = compute_scores(model, images, batch_size)
        return scores, {"score": scores}
    model.eval()
    device = model_device(model)
    scores, components = [], []
    for start in batch_starts(len(images), batch_size):
        batch_components = model.score_components(images[start:start + batch_size].to(device))
        scores.append(model.combine_score_components(batch_components).cpu())  # on the model's device, as score()
        components.append(batch_components.cpu())
    if not components:
        return np.zeros(0), {name: np.zeros(0) for name in names}
    combined, columns = torch.cat(scores).double().numpy(), torch.cat(components).double().numpy()
    return combined, {name: columns[:, index] for index, name in enumerate(names)}


def complexity_metrics(model, train_columns: dict[str, np.ndarray], test_columns: dict[str, np.ndarray],
                       train_images: torch.Tensor, test_images: torch.Tensor, is_novel: np.ndarray) -> dict:
    """A diagnostic of how much of the score is image complexity (``calibration.py``): the AUC of the
    complexity alone, and of each error column and the model's combination after complexity
    calibration fitted on the normal training images (``test_images`` may be a validation split): the
    calibrated components z-combined as the score combines them, or, for a fixed sum of raw components,
    that sum calibrated as one column (``score``). Never used to choose anything."""
    complexity_alone = auc(is_novel, image_complexity(test_images))
    z_combined = bool(model.score_component_names) and model.score_components_normalised
    if not z_combined and "score" not in train_columns:  # a fixed sum of raw components: calibrated as one score
        train_columns, test_columns = ({**columns, "score": weighted_sum(columns, model.score_component_weights)}
                                       for columns in (train_columns, test_columns))
    try:
        train_calibrated, test_calibrated, calibrations = calibrate_columns(train_columns, test_columns, train_images, test_images)
    except UserError as error:  # scores <= 0 or NaN (no log), or nothing to fit: recorded, not raised
        return {"auc_complexity_alone": complexity_alone, "auc_calibrated": None, "note": str(error)}
    if z_combined:
        combined = z_combination(test_calibrated, train_calibrated, model.score_component_weights)
    else:
        combined = test_calibrated["score"]
    return {"auc_complexity_alone": complexity_alone, "auc_calibrated": auc(is_novel, combined),
            "auc_calibrated_per_column": {name: auc(is_novel, scores) for name, scores in test_calibrated.items()},
            "fit": {name: dataclasses.asdict(fit) for name, fit in calibrations.items()}}


def validation_record(model, images: torch.Tensor, is_novel: torch.Tensor) -> dict:
    """One epoch's view of the validation split (held-out normal training images vs other-class
    training images; never test images): the score's AUC, each score component's AUC, and the
    attention masks' statistics on the normal and on the novel images (None without attention)."""
    labels = is_novel.numpy()
    scores, columns = scores_and_columns(model, images)  # one pass: the score and the components it combines
    record = {"auc": auc(labels, scores)}
    if model.score_component_names:
        record["component_aucs"] = {name: auc(labels, values) for name, values in columns.items()}
    masks = mask_pass(model, images, {"normal": labels == 0, "novel": labels == 1})
    record["masks"] = None if masks is None else masks.statistics
    if masks is not None:
        record["mask_aucs"] = evidence_aucs(masks, images, labels)
    return record


@torch.inference_mode()
def save_panel_figures(out_dir: Path, model, data, title: str = "", n: int = 8) -> list[Path]:
    """For the first ``n`` normal and novel test images, each of the model's ``figure_panels`` as
    ``<name>.png`` (e.g. masks.png: input / mask / masked input / both reconstructions; residuals.png:
    input / G(z*) / |x - G(z*)|). Returns the paths written."""
    from ..viz.plots import save_image_rows

    model.eval()
    device = model_device(model)
    panels = {column: model.figure_panels(data.test[torch.nonzero(data.test_is_novel == is_novel).flatten()[:n]].to(device))
              for column, is_novel in (("normal test images", 0), ("novel test images", 1))}
    written = []
    for name in panels["normal test images"]:
        columns = {column: [(label, rows.cpu()) for label, rows in by_name[name]] for column, by_name in panels.items()}
        save_image_rows(Path(out_dir) / f"{name}.png", columns, title)
        written.append(Path(out_dir) / f"{name}.png")
    return written


__all__ = ["auc", "complexity_metrics", "compute_scores", "evaluate_model",
           "save_panel_figures", "scores_and_columns", "train_statistics_images",
           "validation_record"]
