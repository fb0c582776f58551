"""How much of a checkpoint's novelty score is image complexity: AUC of the raw and the complexity-calibrated score.

For every checkpoint (one normal class each) the whole test split is scored again. Each score
(for attention models: the first GAN's error, the masked GAN's error and their combination; for
the others: the model's score) is reported raw and complexity-calibrated
(``attn_ocgan/engine/calibration.py``: ``log score`` regressed on ``log complexity`` over the
normal *training* images, the residual is the score), beside the AUC of the complexity alone
(total variation per pixel: higher = more novel). A diagnostic on the test split, like
``score_components.py``: nothing is selected with it and no model's default changes.

    python benchmarks/complexity_calibration.py --data-root ../shared/data/cifar10-jpeg \\
        --out results/complexity_calibration_cifar10-jpeg_attn-ocgan.md \\
        runs/protocol/cifar10-jpeg_attn-ocgan/class*_seed0_e25/checkpoints/last.pt

writes the table (``--out``) and a figure beside it (same name, ``.png``): per class, log score
against log complexity for normal and novel test images, with the line fitted on training images.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attn_ocgan.data import load_one_class  # noqa: E402
from attn_ocgan.engine.calibration import COMPLEXITY_FLOOR, image_complexity  # noqa: E402
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint  # noqa: E402
from attn_ocgan.utils.environment import machine_description  # noqa: E402
from attn_ocgan.engine.evaluation import auc, complexity_metrics, scores_and_columns  # noqa: E402
from attn_ocgan.utils.io import atomic_path, atomic_write_text  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402

N_FIGURE_NOVEL = 2000  # novel test images drawn per panel (of 9000 on CIFAR-10), so the normal ones stay visible


def checkpoint_result(path: Path, data_root: str | None) -> dict:
    """AUCs of one checkpoint: complexity alone, and raw / calibrated per score; plus figure data.
    The calibrated numbers are those every evaluation logs (``evaluation.complexity_metrics``)."""
    payload = read_checkpoint(path)
    config, model = model_from_checkpoint(payload)
    data = load_one_class(config.data if data_root is None else dataclasses.replace(config.data, root=data_root))
    is_novel = data.test_is_novel.numpy()
    test_scores, test_raw = scores_and_columns(model, data.test)
    _, train_raw = scores_and_columns(model, data.train)
    complexity = complexity_metrics(model, train_raw, test_raw, data.train, data.test, is_novel)
    if complexity["auc_calibrated"] is None:
        raise UserError(f"{path}: {complexity['note']}")
    calibrated = complexity["auc_calibrated_per_column"]
    aucs = {name: (auc(is_novel, test_raw[name]), calibrated[name]) for name in test_raw}
    if "first_gan" in test_raw:  # the model's own score is the combination of the two errors
        aucs["combined"] = (auc(is_novel, test_scores), complexity["auc_calibrated"])
    first = next(iter(test_raw))
    log_complexity = np.log(np.maximum(image_complexity(data.test), COMPLEXITY_FLOOR))
    return {"class": data.normal_class, "class_name": data.class_names[data.normal_class], "model": config.model,
            "epoch": int(payload["epoch"]), "complexity_auc": complexity["auc_complexity_alone"], "aucs": aucs,
            "fit": complexity["fit"][first], "figure": (first, log_complexity, np.log(test_raw[first]), is_novel)}


def table(results: list[dict], command: str) -> str:
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


def save_figure(results: list[dict], path: Path) -> None:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoints of any registered model with positive scores (one row each)")
    parser.add_argument("--data-root", default=None, help="Override the data root stored in the checkpoints.")
    parser.add_argument("--out", required=True, help="Markdown table to write; the figure goes beside it (.png).")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        models = {str(read_checkpoint(Path(path))["config"]["model"]) for path in args.checkpoints}
        if len(models) > 1:  # refused before minutes of scoring
            raise UserError(f"the checkpoints are of different models ({', '.join(sorted(models))}); pass one model's")
        results = sorted((checkpoint_result(Path(path), args.data_root) for path in tqdm(args.checkpoints, desc="checkpoints")),
                         key=lambda result: result["class"])
        if len({tuple(result["aucs"]) for result in results}) > 1:
            raise UserError("the checkpoints have different score columns (a masked GAN that never trained gives one "
                            "column); pass checkpoints whose masked GANs all trained, or none")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    out, text = Path(args.out), table(results, command)
    save_figure(results, out.with_suffix(".png"))
    atomic_write_text(out, text)
    print(f"wrote {out} and {out.with_suffix('.png')} ({len(results)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
