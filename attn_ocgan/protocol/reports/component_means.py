"""How large each raw score component is on normal and on novel test images, per protocol cell.

The question it answers is the Skip-GANomaly copy check (do the U-Net's skips let it reconstruct novel
images as well as normal ones?) for any model whose score is made of components: the ratio of a
component's mean on novel test images to its mean on normal test images is near 1 (or below) when the
component does not separate them, whatever its AUC. Read from the metrics log the protocol runner
writes beside its table (``<tag>_<model>.metrics.jsonl``); nothing is scored again. A plot beside the
table (``<out>.png``) puts every cell at (ratio, AUC alone), one panel per component.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from ...errors import UserError
from ...utils.environment import machine_description
from ...utils.io import atomic_write_text
from ...viz.plots import save_component_ratio_plot
from ..tables import read_metrics_log

COLUMNS = ("class", "seed", "epoch", "component", "mean, train normal", "mean, test normal", "mean, test novel",
           "novel / normal", "AUC alone", "AUC of the score")


def component_means(cell: dict) -> dict[str, dict]:
    """``{component: {"train_normal", "test_normal", "test_novel"}}`` of one logged protocol cell."""
    means = cell["metrics"].get("score_component_mean")
    if not means:
        raise UserError(f"class {cell['normal_class']} seed {cell['seed']} of this log has no score_component_mean "
                        "(its model has no score components, or it was logged before 2026-12-04); "
                        "pass a metrics log of a model with components, written since")
    return means


def novel_to_normal(mean: dict) -> float:
    return mean["test_novel"] / mean["test_normal"] if mean["test_normal"] else float("nan")


def cell_rows(cell: dict) -> list[tuple]:
    """Table rows (one per score component) of one logged protocol cell."""
    metrics = cell["metrics"]
    epoch = cell.get("selected_epoch") or cell["epochs"]
    rows = []
    for name, mean in component_means(cell).items():
        train = "—" if mean["train_normal"] is None else f"{mean['train_normal']:.4g}"
        ratio = novel_to_normal(mean)
        rows.append((metrics["normal_class_name"], cell["seed"], epoch, name, train, f"{mean['test_normal']:.4g}",
                     f"{mean['test_novel']:.4g}", f"{ratio:.2f}", f"{metrics['auc_per_score_component'][name]:.4f}",
                     f"{metrics['auc']:.4f}"))
    return rows


def ratio_points(cells: list[dict]) -> dict[str, list[tuple[str, float, float]]]:
    """``{component: [(class label, novel / normal, AUC alone)]}`` for ``save_component_ratio_plot``;
    a class with several seeds is labelled with its seed too."""
    seeds_of = {}
    for cell in cells:
        seeds_of.setdefault(cell["normal_class"], set()).add(cell["seed"])
    points: dict[str, list] = {}
    for cell in cells:
        label = str(cell["metrics"]["normal_class_name"])
        if len(seeds_of[cell["normal_class"]]) > 1:
            label += f" s{cell['seed']}"
        for name, mean in component_means(cell).items():
            points.setdefault(name, []).append((label, novel_to_normal(mean), cell["metrics"]["auc_per_score_component"][name]))
    return points


def component_means_markdown(title: str, rows: list[tuple], command: str, plot_name: str) -> str:
    lines = [f"# {title}: each score component on normal and novel test images", "",
             f"![each cell's novel / normal ratio against its AUC, per component]({plot_name})", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    lines += ["", "Raw component values (before the training-image normalisation). novel / normal near 1 or below: the "
              "component is as large on novel images as on normal ones (for a reconstruction error: the model "
              "reconstructs, i.e. copies, novel images as well as normal ones).", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def write_component_means(out: Path, command: str, metrics_log: Path) -> int:
    """Write the table and its plot (``out`` with ``.png``) for every cell of ``metrics_log`` (sorted
    by class, then seed); nothing is written when a cell is refused. Returns the number of cells."""
    if not Path(metrics_log).is_file():
        raise UserError(f"{metrics_log} does not exist; pass results/<dataset>/<tag>_<model>.metrics.jsonl written by "
                        "'attn-ocgan protocol'")
    if Path(out).suffix == ".png":
        raise UserError(f"--out {out}: the table is markdown and its plot goes beside it as .png; pass e.g. --out "
                        f"{Path(out).with_suffix('.md')}")
    cells = sorted(read_metrics_log(Path(metrics_log)), key=lambda cell: (int(cell["normal_class"]), int(cell["seed"])))
    if not cells:
        raise UserError(f"{metrics_log} holds no cells; run 'attn-ocgan protocol' first")
    rows = [row for cell in cells for row in cell_rows(cell)]
    title = f"{cells[0]['model']} on {cells[0]['dataset']}"
    plot = Path(out).with_suffix(".png")
    save_component_ratio_plot(plot, ratio_points(cells), title)
    atomic_write_text(Path(out), component_means_markdown(title, rows, command, plot.name))
    return len(cells)
