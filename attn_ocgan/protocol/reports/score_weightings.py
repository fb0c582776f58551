"""Test AUC of finished cells under several weightings of their score components.

A model whose score is a weighted sum of z-normalised components (``score_component_names``) is
scored once per checkpoint; the AUC is then computed for the weights it was trained with (e.g.
chosen on a validation split), for equal weights (1/K each: no choice, nothing seen but normal
training images), for the weights chosen on pseudo-anomalies made from normal images
(``score_weights.choose_pseudo_anomaly_weights``: CutPaste patches, shuffled tiles; strict
one-class) and for each component alone. A diagnostic that tells whether a weighting needs to be
chosen at all and whether normal images alone can choose it; never a selection: the table reports
every weighting side by side.
"""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import numpy as np
import torch

from ...data import load_one_class
from ...data.pseudo_anomalies import PSEUDO_ANOMALIES
from ...engine.evaluation import auc, scores_and_columns
from ...engine.score_weights import choose_pseudo_anomaly_weights, normalised_components, pseudo_choice_images
from ...errors import UserError
from ...utils.environment import machine_description
from ...utils.io import atomic_write_text
from .component_means import checkpoint_with_components


@dataclasses.dataclass(frozen=True)
class WeightingRow:
    class_name: str
    normal_class: int
    seed: int
    epoch: int
    trained: float  # AUC with the weights stored in the checkpoint (the model's own score)
    equal: float  # AUC with weight 1/K on every z-normalised component
    alone: dict[str, float]  # AUC of each component alone
    trained_weights: dict[str, float]
    pseudo: dict[str, float]  # per pseudo-anomaly kind (PSEUDO_ANOMALIES): AUC with the weights chosen on it
    pseudo_weights: dict[str, dict[str, float]]
    pseudo_images: str  # which normal images the pseudo-anomaly weights were chosen on


def weightable_checkpoint(path: Path, device: str = "cpu"):
    """(payload, config, model) of a checkpoint whose score z-normalises its components; else a one-line UserError."""
    payload, config, model = checkpoint_with_components(path, device)
    if not model.score_components_normalised:
        raise UserError(f"{path} is a {config.model} checkpoint whose score is a fixed sum of raw components "
                        f"({', '.join(model.score_component_names)}), not z-normalised ones to re-weight; pass checkpoints "
                        "of a model that z-normalises its components (attn-ocgan, skip-ganomaly)")
    return payload, config, model


def weighting_row(payload: dict, config, model, data_root: str | None = None) -> WeightingRow:
    """One row: a ``weightable_checkpoint`` scored on its test images under every weighting."""
    names = model.score_component_names
    data = load_one_class(config.data, data_root)
    scores, raw = scores_and_columns(model, data.test)  # one pass: the model's own score and its raw components
    columns = model.normalise_score_components(torch.from_numpy(np.stack([raw[name] for name in names], 1))).numpy()
    is_novel = data.test_is_novel.numpy()
    normal_images, described = pseudo_choice_images(data)
    normal_components = normalised_components(model, normal_images)  # shared by every kind
    pseudo_weights = {kind: choose_pseudo_anomaly_weights(model, normal_images, kind, normal_components=normal_components)[0]
                      for kind in PSEUDO_ANOMALIES}
    return WeightingRow(data.class_names[data.normal_class], data.normal_class, config.train.seed, int(payload["epoch"]),
                        auc(is_novel, scores), auc(is_novel, columns.mean(1)),
                        {name: auc(is_novel, columns[:, index]) for index, name in enumerate(names)},
                        dict(model.score_component_weights),
                        {kind: auc(is_novel, columns @ np.array([weights[name] for name in names]))
                         for kind, weights in pseudo_weights.items()},
                        pseudo_weights, described)


PSEUDO_LABELS = {"cutpaste": "cut-paste", "shuffle": "shuffled-tile"}


def weightings_markdown(rows: list[WeightingRow], command: str) -> str:
    names = list(rows[0].alone)
    if any(list(row.alone) != names for row in rows):
        raise UserError("the checkpoints have different score components; pass checkpoints of one model and recipe")
    kinds = PSEUDO_ANOMALIES
    weights_text = lambda weights: ", ".join(f"{weights[name]:.2f}" for name in names)  # noqa: E731
    header = ["class", "seed", "epochs", "trained weights", "AUC, trained weights", "AUC, equal weights"] + \
             [f"AUC, {PSEUDO_LABELS[kind]} weights (weights)" for kind in kinds] + [f"{name} alone" for name in names]
    lines = ["# Test AUC under each weighting of the score components", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(
            [row.class_name, str(row.seed), str(row.epoch), weights_text(row.trained_weights), f"{row.trained:.4f}", f"{row.equal:.4f}"]
            + [f"{row.pseudo[kind]:.4f} ({weights_text(row.pseudo_weights[kind])})" for kind in kinds]
            + [f"{row.alone[name]:.4f}" for name in names]) + " |")
    mean = lambda values: f"**{np.mean(values):.4f}**"  # noqa: E731
    lines.append("| " + " | ".join(["mean", "", "", "", mean([row.trained for row in rows]), mean([row.equal for row in rows])]
                                    + [mean([row.pseudo[kind] for row in rows]) for kind in kinds]
                                    + [mean([row.alone[name] for row in rows]) for name in names]) + " |")
    lines.append("")
    for label, values in [("Equal", [row.equal for row in rows])] + \
            [(f"{PSEUDO_LABELS[kind].capitalize()}", [row.pseudo[kind] for row in rows]) for kind in kinds]:
        differences = np.array(values) - np.array([row.trained for row in rows])
        spread = f" ± {differences.std(ddof=1):.4f} (std over rows)" if len(rows) > 1 else ""
        lines.append(f"- {label} minus trained weights: {differences.mean():+.4f}{spread}, higher on "
                     f"{int((differences > 1e-6).sum())}/{len(rows)} rows.")
    for kind in kinds:
        differences = np.array([row.pseudo[kind] - row.equal for row in rows])
        spread = f" ± {differences.std(ddof=1):.4f} (std over rows)" if len(rows) > 1 else ""
        lines.append(f"- {PSEUDO_LABELS[kind].capitalize()} minus equal weights: {differences.mean():+.4f}{spread}, higher on "
                     f"{int((differences > 1e-6).sum())}/{len(rows)} rows.")
    choice_images = sorted({row.pseudo_images for row in rows})
    lines += ["", "Components are z-normalised with the statistics of normal training images stored in each checkpoint; "
              f"weights are in the order {', '.join(names)}. Pseudo-anomaly weights: the simplex grid (step 0.1) weights with "
              "the best AUC on normal images vs one pseudo-anomaly made from each of them (cut-paste: a patch of the image "
              "pasted elsewhere in it; shuffled-tile: its 8x8 tiles permuted), chosen on "
              f"{'; '.join(choice_images)} per checkpoint; no image of another class and no test image. "
              "A diagnostic, not a selection: every weighting is shown.",
              "", "Produced by:", "", f"    {command}", "",
              f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def write_score_weightings(out: Path, command: str, checkpoints, data_root: str | None = None, device: str = "cpu",
                           progress: bool = True) -> list[WeightingRow]:
    """Score each checkpoint, write the table (rows by class, then seed); nothing is written on a refusal."""
    from tqdm import tqdm

    loaded = [weightable_checkpoint(Path(path), device) for path in checkpoints]  # refuse before minutes of scoring
    rows = [weighting_row(*checkpoint, data_root) for checkpoint in tqdm(loaded, desc="checkpoints", disable=not progress)]
    rows.sort(key=lambda row: (row.normal_class, row.seed))
    atomic_write_text(Path(out), weightings_markdown(rows, command))
    return rows
