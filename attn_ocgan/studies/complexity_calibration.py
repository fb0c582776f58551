"""How much of a checkpoint's novelty score is image complexity: AUC of the raw and the complexity-calibrated score.

For every checkpoint (one normal class each) the whole test split is scored again. Each score (for
models with score components, e.g. attention OCGAN: each component and their combination; for the
others: the model's score) is reported raw and complexity-calibrated (``engine/calibration.py``:
``log score`` regressed on ``log complexity`` over the normal *training* images, the residual is the
score), beside the AUC of the complexity alone (total variation per pixel: higher = more novel). A
diagnostic on the test split: nothing is selected with it and no model's default changes. The figure
shows, per class, log score against log complexity for normal and novel test images, with the line
fitted on training images.
"""
from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from ..data import load_one_class
from ..engine.calibration import COMPLEXITY_FLOOR, image_complexity
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import resolve_device
from ..engine.evaluation import auc, complexity_metrics, scores_and_columns
from ..errors import UserError
from ..utils.environment import machine_description
from ..utils.io import atomic_path, atomic_write_text

N_FIGURE_NOVEL = 2000  # novel test images drawn per panel (of 9000 on CIFAR-10), so the normal ones stay visible


def checkpoint_result(path: Path, data_root: str | None = None, device: str = "cpu") -> dict:
    """AUCs of one checkpoint (scored on ``device``): complexity alone, and raw / calibrated per score;
    plus figure data. The calibrated numbers are those every evaluation logs (``evaluation.complexity_metrics``)."""
    payload = read_checkpoint(path)
    config, model = model_from_checkpoint(payload, resolve_device(device))
    data = load_one_class(config.data, data_root)
    is_novel = data.test_is_novel.numpy()
    test_scores, test_raw = scores_and_columns(model, data.test)
    _, train_raw = scores_and_columns(model, data.train)
    complexity = complexity_metrics(model, train_raw, test_raw, data.train, data.test, is_novel)
    if complexity["auc_calibrated"] is None:
        raise UserError(f"{path}: {complexity['note']}")
    calibrated = complexity["auc_calibrated_per_column"]
    aucs = {name: (auc(is_novel, test_raw[name]), calibrated[name]) for name in test_raw}
    if "score" not in test_raw:  # the columns are components: the model's own score is their combination
        aucs["combined"] = (auc(is_novel, test_scores), complexity["auc_calibrated"])
    first = next(iter(test_raw))
    log_complexity = np.log(np.maximum(image_complexity(data.test), COMPLEXITY_FLOOR))
    return {"class": data.normal_class, "class_name": data.class_names[data.normal_class], "model": config.model,
            "epoch": int(payload["epoch"]), "complexity_auc": complexity["auc_complexity_alone"], "aucs": aucs,
            "fit": complexity["fit"][first], "figure": (first, log_complexity, np.log(test_raw[first]), is_novel)}


def calibration_markdown(results: list[dict], command: str) -> str:
    names = list(results[0]["aucs"])
    columns = ["class", "model", "epoch", "complexity alone"] + [f"{name}: raw → calibrated" for name in names] + \
              [f"slope, r ({names[0]}, training images)"]
    lines = ["# Novelty score vs image complexity: test AUC of the raw and the complexity-calibrated score", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for result in results:
        cells = [result["class_name"], result["model"], str(result["epoch"]), f"{result['complexity_auc']:.3f}"]
        cells += [f"{raw:.3f} → {calibrated:.3f}" for raw, calibrated in result["aucs"].values()]
        cells.append(f"{result['fit']['slope']:.2f}, {result['fit']['correlation']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    means = [np.mean([result["aucs"][name] for result in results], axis=0) for name in names]
    lines.append("| " + " | ".join([f"**mean of {len(results)}**", "", "", f"{np.mean([r['complexity_auc'] for r in results]):.3f}"]
                                   + [f"**{raw:.3f} → {calibrated:.3f}**" for raw, calibrated in means] + [""]) + " |")
    lines += ["", "Complexity: total variation per pixel (mean absolute difference of neighbouring pixels); its AUC "
              "alone scores more detailed images as more novel. Calibrated: the residual of `log score = a + b log complexity`, "
              "fitted on the normal **training** images of the class (`attn_ocgan/engine/calibration.py`). A diagnostic on the "
              "test split: no model, epoch or setting was chosen with it.", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def save_calibration_figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(results), 5)
    rows = (len(results) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    generator = np.random.default_rng(0)
    for axis, result in zip(axes.flat, results):
        name, log_complexity, log_score, is_novel = result["figure"]
        novel = np.flatnonzero(is_novel == 1)
        novel = generator.choice(novel, min(N_FIGURE_NOVEL, len(novel)), replace=False)
        normal = np.flatnonzero(is_novel == 0)
        axis.scatter(log_complexity[novel], log_score[novel], s=2, c="0.7", label="novel (test)", rasterized=True)
        axis.scatter(log_complexity[normal], log_score[normal], s=2, c="tab:blue", label="normal (test)", rasterized=True)
        line = np.linspace(log_complexity.min(), log_complexity.max(), 2)
        fit = result["fit"]
        axis.plot(line, fit["intercept"] + fit["slope"] * line, "k-", lw=1, label="fit (normal train)")
        raw, calibrated = result["aucs"][name]
        axis.set_title(f"{result['class_name']}: AUC {raw:.3f} → {calibrated:.3f}", fontsize=9)
        axis.set_xlabel("log complexity", fontsize=8)
        axis.set_ylabel(f"log error ({name})", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(results):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7, markerscale=4, loc="upper left")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)


def write_complexity_calibration(checkpoints, out: Path, command: str, data_root: str | None = None,
                                 device: str = "cpu", progress: bool = True) -> list[dict]:
    """Score every checkpoint (one model's, one row per class), then write the table (``out``) and the
    figure beside it (.png); nothing is written when an input is refused. Returns the rows' results."""
    from tqdm import tqdm

    if not checkpoints:
        raise UserError("pass at least one checkpoint")
    models = {str(read_checkpoint(Path(path))["config"]["model"]) for path in checkpoints}
    if len(models) > 1:  # refused before minutes of scoring
        raise UserError(f"the checkpoints are of different models ({', '.join(sorted(models))}); pass one model's")
    results = sorted((checkpoint_result(Path(path), data_root, device) for path in tqdm(checkpoints, desc="checkpoints", disable=not progress)),
                     key=lambda result: result["class"])
    if len({tuple(result["aucs"]) for result in results}) > 1:
        raise UserError("the checkpoints have different score columns (a masked GAN that never trained gives one "
                        "column); pass checkpoints whose masked GANs all trained, or none")
    out = Path(out)
    text = calibration_markdown(results, command)
    save_calibration_figure(results, out.with_suffix(".png"))
    atomic_write_text(out, text)
    return results
