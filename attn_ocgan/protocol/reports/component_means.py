"""How large each raw score component is on normal and on novel test images, per protocol cell.

The question it answers is the Skip-GANomaly copy check (do the U-Net's skips let it reconstruct novel
images as well as normal ones?) for any model whose score is made of components: the ratio of a
component's mean on novel test images to its mean on normal test images is near 1 (or below) when the
component does not separate them, whatever its AUC. Read from the metrics log the protocol runner
writes beside its table (``<tag>_<model>.metrics.jsonl``; nothing is scored again), or from checkpoints
(the test split is scored again: cells logged before a model declared its components). A plot beside
the table (``<out>.png``) puts every cell at (ratio, AUC alone), one panel per component.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from ...data import dataset_label, load_one_class
from ...engine.checkpoint import model_from_checkpoint, read_checkpoint
from ...engine.device import resolve_device
from ...engine.evaluation import evaluate_model
from ...errors import UserError
from ...utils.environment import machine_description
from ...utils.io import atomic_write_text
from ...viz.plots import save_component_ratio_plot
from ..tables import LOGGED_CELL_KEYS, read_metrics_log

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
    lines += ["", "Raw component values, before any normalisation the score applies to them. novel / normal near 1 "
              "or below: the component is as large on novel images as on normal ones (for a reconstruction error: the model "
              "reconstructs, i.e. copies, novel images as well as normal ones).", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def checkpoint_with_components(path: Path, device: str = "cpu"):
    """(payload, config, model) of a checkpoint whose score has components; else a one-line UserError."""
    payload = read_checkpoint(path)
    config, model = model_from_checkpoint(payload, resolve_device(device))
    if not model.score_component_names:
        raise UserError(f"{path} is a {config.model} checkpoint whose score has no components; pass checkpoints of a "
                        "model whose score combines several errors (attn-ocgan once its masked GAN has trained, "
                        "skip-ganomaly, fanogan)")
    return payload, config, model


def checkpoint_cell(payload: dict, config, model, data_root: str | None = None) -> dict:
    """One checkpoint as a metrics-log cell: its test split scored again (``evaluate_model``)."""
    data = load_one_class(config.data, data_root)
    return {"dataset": dataset_label(config.data.name, config.data.root, config.data.folder), "model": config.model,
            "normal_class": data.normal_class, "seed": config.train.seed, "epochs": int(payload["epoch"]),
            "selected_epoch": None, "metrics": evaluate_model(model, data)}


def checkpoint_cells(checkpoints, data_root: str | None = None, device: str = "cpu", progress: bool = True) -> list[dict]:
    """Cells of checkpoints of one model on one dataset, every checkpoint checked before any is scored."""
    from tqdm import tqdm

    loaded = [checkpoint_with_components(Path(path), device) for path in checkpoints]
    settings = sorted({(config.model, dataset_label(config.data.name, config.data.root, config.data.folder))
                       for _, config, _ in loaded})
    if len(settings) > 1:
        raise UserError(f"the checkpoints hold {' and '.join(f'{model} on {data}' for model, data in settings[:2])}; "
                        "pass the checkpoints of one model on one dataset (one table each)")
    return [checkpoint_cell(*checkpoint, data_root) for checkpoint in tqdm(loaded, desc="checkpoints", disable=not progress)]


def write_component_means(out: Path, command: str, metrics_log: Path | None = None, checkpoints=(),
                          data_root: str | None = None, device: str = "cpu", progress: bool = True) -> int:
    """Write the table and its plot (``out`` with ``.png``) for every cell of ``metrics_log`` or every one
    of ``checkpoints`` (sorted by class, then seed); nothing is written when a cell is refused. Returns
    the number of cells."""
    if bool(checkpoints) == (metrics_log is not None):
        raise UserError("pass either checkpoints or --metrics FILE")
    if metrics_log is not None and not Path(metrics_log).is_file():
        raise UserError(f"{metrics_log} does not exist; pass results/<dataset>/<tag>_<model>.metrics.jsonl written by "
                        "'attn-ocgan protocol'")
    if Path(out).suffix == ".png":
        raise UserError(f"--out {out}: the table is markdown and its plot goes beside it as .png; pass e.g. --out "
                        f"{Path(out).with_suffix('.md')}")
    found = read_metrics_log(Path(metrics_log), LOGGED_CELL_KEYS) if metrics_log is not None else checkpoint_cells(checkpoints, data_root, device, progress)
    cells = sorted(found, key=lambda cell: (int(cell["normal_class"]), int(cell["seed"])))
    if not cells:
        raise UserError(f"{metrics_log} holds no cells; run 'attn-ocgan protocol' first")
    rows = [row for cell in cells for row in cell_rows(cell)]
    title = f"{cells[0]['model']} on {cells[0]['dataset']}"
    plot = Path(out).with_suffix(".png")
    save_component_ratio_plot(plot, ratio_points(cells), title)
    atomic_write_text(Path(out), component_means_markdown(title, rows, command, plot.name))
    return len(cells)
