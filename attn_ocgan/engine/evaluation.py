"""Scores -> ROC AUC over the whole test set (scikit-learn), plus plots and metrics.json."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from ..errors import UserError
from .calibration import calibrate_columns, image_complexity, z_combination
from .device import model_device
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


def auc(is_novel, scores) -> float:
    """ROC AUC with novel = positive class and higher score = more novel (NonFiniteScores for NaN/inf)."""
    scores = np.asarray(scores)
    check_finite_scores(scores, "images")
    return float(roc_auc_score(np.asarray(is_novel), scores))


class NonFiniteScores(UserError):
    """The model gives NaN or infinite scores (e.g. a diverged model): no AUC is computed."""


def check_finite_scores(scores: np.ndarray, what: str) -> None:
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        raise NonFiniteScores(f"the model gives non-finite novelty scores for {bad} of {len(scores)} {what} (a diverged "
                              "model?); no AUC was computed; retrain it, e.g. with a lower --lr")


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
    masks = mask_statistics(model, {"train_normal": data.train, "test_normal": data.test[is_novel == 0],
                                    "test_novel": data.test[is_novel == 1]})
    if masks is not None:
        metrics["masks"] = masks
        metrics["mask_aucs"] = mask_evidence_aucs(model, data.test, is_novel, train_images)
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


@torch.inference_mode()
def component_columns(model, images: torch.Tensor, batch_size: int = 1000) -> dict[str, np.ndarray]:
    """``score_components`` as columns (N,) named ``score_component_names`` (e.g. first GAN on x,
    masked GAN on x * M)."""
    model.eval()
    device = model_device(model)
    components = torch.cat([model.score_components(images[start:start + batch_size].to(device)).cpu()
                            for start in range(0, len(images), batch_size)]).double().numpy()
    return {name: components[:, index] for index, name in enumerate(model.score_component_names)}


def complexity_metrics(model, train_columns: dict[str, np.ndarray], test_columns: dict[str, np.ndarray],
                       train_images: torch.Tensor, test_images: torch.Tensor, is_novel: np.ndarray) -> dict:
    """A diagnostic of how much of the score is image complexity (``calibration.py``): the AUC of the
    complexity alone, and of each error column and the model's combination after complexity
    calibration fitted on the normal training images (``test_images`` may be a validation split).
    Never used to choose anything."""
    complexity_alone = auc(is_novel, image_complexity(test_images))
    try:
        train_calibrated, test_calibrated, calibrations = calibrate_columns(train_columns, test_columns, train_images, test_images)
    except UserError as error:  # scores <= 0 or NaN (no log), or nothing to fit: recorded, not raised
        return {"auc_complexity_alone": complexity_alone, "auc_calibrated": None, "note": str(error)}
    if model.score_component_names:
        combined = z_combination(test_calibrated, train_calibrated, model.score_component_weights)
    else:
        combined = test_calibrated["score"]
    return {"auc_complexity_alone": complexity_alone, "auc_calibrated": auc(is_novel, combined),
            "auc_calibrated_per_column": {name: auc(is_novel, scores) for name, scores in test_calibrated.items()},
            "fit": {name: dataclasses.asdict(fit) for name, fit in calibrations.items()}}


def component_aucs(model, images: torch.Tensor, is_novel: np.ndarray, batch_size: int = 1000) -> dict[str, float]:
    """AUC of each raw score component of a two-GAN model (``score_components``: first GAN on x,
    masked GAN on x * M) on its own. A diagnostic of what each GAN contributes to the combined
    score; the combination weight itself is fixed in the config, never chosen from these."""
    return {name: auc(is_novel, scores) for name, scores in component_columns(model, images, batch_size).items()}


@torch.inference_mode()
def mask_statistics(model, groups: dict[str, torch.Tensor], batch_size: int = 1000) -> dict | None:
    """Per group: mean mask value (area), mean |M - 0.5| (0: uniform grey, 0.5: binary), the mean
    mask on bright pixels (x > 0, e.g. the strokes of a digit) and on the others, and
    ``template_share``: the share of the masks' variance that their mean mask over the group (a
    fixed spatial template) explains (1: the same mask on every image; 0: nothing image-independent).
    None for a model without ``attention_maps``."""
    model.eval()
    device = model_device(model)
    statistics = {}
    for name, images in groups.items():
        sums = torch.zeros(5, dtype=torch.float64)  # mask, |M - .5|, mask on bright, n bright, n pixels
        pixel_sums, square_sum = 0.0, 0.0  # per-pixel sum of masks, sum of squared masks
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(device)
            masks = model.attention_maps(batch)
            if masks is None:
                return None
            bright = (batch.mean(1, keepdim=True) > 0).float()
            sums += torch.stack([masks.sum(), (masks - 0.5).abs().sum(), (masks * bright).sum(), bright.sum(),
                                 torch.tensor(float(masks.numel()), device=device)]).double().cpu()
            flat = masks.flatten(1).double().cpu()
            pixel_sums = pixel_sums + flat.sum(0)
            square_sum += float((flat ** 2).sum())
        total, decisive, on_bright, n_bright, n = sums.tolist()
        statistics[name] = {"area": total / n, "decisiveness": decisive / n,
                            "on_bright_pixels": on_bright / max(n_bright, 1.0),
                            "on_dark_pixels": (total - on_bright) / max(n - n_bright, 1.0),
                            "template_share": template_share(pixel_sums, square_sum, len(images))}
    return statistics


def template_share(pixel_sums, square_sum: float, n_images: int) -> float | None:
    """1 - (variance around the per-pixel mean) / (variance around the overall mean), from the
    per-pixel sums of N masks and the sum of their squares; None when the masks do not vary."""
    if not n_images or not isinstance(pixel_sums, torch.Tensor):
        return None
    around_overall = square_sum - float(pixel_sums.sum()) ** 2 / (n_images * pixel_sums.numel())
    around_template = square_sum - float((pixel_sums ** 2).sum()) / n_images
    return None if around_overall <= 1e-12 else max(0.0, min(1.0, 1 - around_template / around_overall))


MASK_STATISTICS_PER_IMAGE = ("area", "decisiveness", "on_bright_pixels")


@torch.inference_mode()
def per_image_mask_statistics(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray | None:
    """(N, 3): each image's mask area, decisiveness and mean mask on its bright pixels (x > 0; 0.5
    where it has none), in ``MASK_STATISTICS_PER_IMAGE`` order. None for a model without masks."""
    model.eval()
    device = model_device(model)
    rows = []
    for start in batch_starts(len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        masks = model.attention_maps(batch)
        if masks is None:
            return None
        bright = (batch.mean(1, keepdim=True) > 0).float().flatten(1)
        flat = masks.flatten(1)
        on_bright = torch.where(bright.sum(1) > 0, (flat * bright).sum(1) / bright.sum(1).clamp(min=1), torch.full_like(flat[:, 0], 0.5))
        rows.append(torch.stack([flat.mean(1), (flat - 0.5).abs().mean(1), on_bright], 1).double().cpu())
    # rounded to float32's precision: summation-order noise must not rank images whose masks are equal
    return np.round(torch.cat(rows).numpy(), 6) if rows else np.zeros((0, len(MASK_STATISTICS_PER_IMAGE)))


@torch.inference_mode()
def template_deviations(model, images: torch.Tensor, normal_images: torch.Tensor,
                        batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Per image (N,): the mean squared distance of its mask from the mean mask of ``normal_images``
    (normal *training* images: the template), and the same distance of the image itself (grey, mean
    over channels) from their mean image: how far each image's mask shape, and the image itself,
    is from what normal images look like."""
    model.eval()
    device = model_device(model)

    def maps(batch):
        batch = batch.to(device)
        return model.attention_maps(batch).flatten(1).double().cpu(), batch.mean(1).flatten(1).double().cpu()

    sums = None
    for start in batch_starts(len(normal_images), batch_size):
        masks, grey = maps(normal_images[start:start + batch_size])
        batch_sums = torch.stack([masks.sum(0), grey.sum(0)])
        sums = batch_sums if sums is None else sums + batch_sums
    mask_template, image_template = sums / max(len(normal_images), 1)
    deviations = []
    for start in batch_starts(len(images), batch_size):
        masks, grey = maps(images[start:start + batch_size])
        deviations.append(torch.stack([((masks - mask_template) ** 2).mean(1), ((grey - image_template) ** 2).mean(1)], 1))
    deviations = np.round(torch.cat(deviations).numpy(), 6)  # float32 precision, as per_image_mask_statistics
    return deviations[:, 0], deviations[:, 1]


def mask_evidence_aucs(model, images: torch.Tensor, is_novel: np.ndarray,
                       normal_images: torch.Tensor | None = None) -> dict[str, float] | None:
    """Do the masks carry class evidence? The AUC of each per-image mask statistic
    (``per_image_mask_statistics``) used as a novelty score: 0.5 when the masks look the same on
    normal and novel images; far from 0.5 either way when they differ. With ``normal_images``
    (normal training images, never test images) also ``shape_deviation``: the AUC of each mask's
    distance from their mean mask (does the mask's *shape* differ on novel images?), beside
    ``reference_image_deviation``, the same distance of the image from their mean image (what a
    template of the images alone tells). A diagnostic, never a score."""
    statistics = per_image_mask_statistics(model, images)
    if statistics is None:
        return None
    aucs = {name: auc(is_novel, statistics[:, index]) for index, name in enumerate(MASK_STATISTICS_PER_IMAGE)}
    # what a mask that only followed the bright pixels would give: the images' bright-pixel share
    # (on MNIST the ink), to tell class evidence from the amount of ink a bounded-area mask can cover
    aucs["reference_bright_share"] = auc(is_novel, (images.mean(1) > 0).double().flatten(1).mean(1).numpy())
    if normal_images is not None and len(normal_images):
        mask_distance, image_distance = template_deviations(model, images, normal_images)
        aucs["shape_deviation"] = auc(is_novel, mask_distance)
        aucs["reference_image_deviation"] = auc(is_novel, image_distance)
    return aucs


def validation_record(model, images: torch.Tensor, is_novel: torch.Tensor) -> dict:
    """One epoch's view of the validation split (held-out normal training images vs other-class
    training images; never test images): the score's AUC, each score component's AUC, and the
    attention masks' statistics on the normal and on the novel images (None without attention)."""
    labels = is_novel.numpy()
    record = {"auc": auc(labels, compute_scores(model, images))}
    if model.score_component_names:
        record["component_aucs"] = component_aucs(model, images, labels)
    record["masks"] = mask_statistics(model, {"normal": images[is_novel == 0], "novel": images[is_novel == 1]})
    if record["masks"] is not None:
        record["mask_aucs"] = mask_evidence_aucs(model, images, labels)
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


__all__ = ["auc", "complexity_metrics", "component_aucs", "component_columns", "compute_scores", "evaluate_model",
           "mask_statistics", "save_panel_figures", "scores_and_columns", "train_statistics_images",
           "validation_record"]
