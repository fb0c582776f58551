"""One table (and one figure) comparing every model's protocol results on a dataset with the published rows.

Reads every protocol CSV ``results/<dataset>/<tag>_<model>.csv`` whose tag belongs to a dataset family
(``mnist``: tags ``mnist`` and ``mnist-*``; ``cifar10``: tags starting with ``cifar10``), so
variants such as ``mnist-ema`` or ``cifar10-jpeg`` appear as their own rows. Per class: the mean
over seeds (± sample std when there are several); the mean column averages the classes present.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..reference import CLASS_NAMES, PAPER_ROWS, is_floor, without_measured_floor
from ..utils.io import atomic_write_text
from .tables import SPREAD_NOTE, aucs_by_class, is_protocol_table, mean_over_classes_cell, read_rows, row_selection, seed_cell

MODEL_ORDER = ("ocgan", "attn-ocgan", "rotnet", "ganomaly", "skip-ganomaly", "anogan", "fanogan", "pixel-knn", "pixel-pca")
CSV_NAME = re.compile(r"^(?P<tag>.+)_(?P<model>[a-z0-9-]+)\.csv$")


@dataclass
class MeasuredRow:
    tag: str
    model: str
    per_class: dict[int, list[float]]  # class -> AUC of each seed
    seeds: list[int]
    epochs: list[int]
    negatives: list[str]
    machines: list[str]
    selections: list[str]  # how each cell's model was chosen (protocol.row_selection)
    table: str = ""  # the CSV, relative to the results folder

    @property
    def label(self) -> str:
        return f"{self.model} ({'floor' if is_floor(self.model) else 'ours'}, {self.tag})"


def belongs_to(tag: str, dataset: str) -> bool:
    if dataset == "mnist":
        return tag == "mnist" or tag.startswith("mnist-")
    return tag.startswith(dataset)


ABLATION_TAGS = "*-abl-*,*-proxy-*"  # ablation settings and proxy cells (by-products of a sweep): left out of the main table


def negatives_kind(negatives: str | None) -> str:
    """A row's negatives without the per-class names of its known anomaly classes (each normal class
    has its own; the class tables list them), so one row of the comparison names the setting once."""
    return re.sub(r" other classes \([^)]*\)", " other classes", negatives or "strict one-class")


def measured_rows(results_dir: Path, dataset: str, tags: str = "*", models: tuple[str, ...] | None = None,
                  exclude: str = ABLATION_TAGS) -> list[MeasuredRow]:
    """Every protocol table of this dataset family whose tag matches the glob ``tags`` but not the glob
    ``exclude`` (comma-separated globs; and whose model is in ``models``, if given), ordered by model (``MODEL_ORDER``, then
    any other) then tag."""
    rows = []
    for path in sorted(Path(results_dir).glob("**/*_*.csv")):  # results/<dataset>/<tag>_<model>.csv
        match = CSV_NAME.match(path.name)
        if not match or not belongs_to(match["tag"], dataset) or not fnmatch.fnmatchcase(match["tag"], tags):
            continue
        if exclude and any(fnmatch.fnmatchcase(match["tag"], glob.strip()) for glob in exclude.split(",") if glob.strip()):
            continue
        if (models is not None and match["model"] not in models) or not is_protocol_table(path):
            continue
        cells = [r for r in read_rows(path) if r["model"] == match["model"] and r["dataset"] == match["tag"]]
        if not cells:
            continue
        rows.append(MeasuredRow(match["tag"], match["model"], aucs_by_class(cells),
                                sorted({int(c["seed"]) for c in cells}), sorted({int(c["epochs"]) for c in cells}),
                                sorted({negatives_kind(c.get("negatives")) for c in cells}),
                                sorted({c.get("machine", "") for c in cells}), sorted({row_selection(c) for c in cells}),
                                path.relative_to(Path(results_dir)).as_posix()))
    order = {name: index for index, name in enumerate(MODEL_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r.model, len(order)), r.tag))


def published_rows(dataset: str, rows: list[MeasuredRow]) -> dict[str, list[float]]:
    """DESIGN.md's rows for this dataset, less its floor rows when the same floor was measured here
    on the same data (a ``pixel-knn`` table whose tag is the dataset itself): not listed twice."""
    published = PAPER_ROWS.get(dataset, {})
    if any(row.model == "pixel-knn" and row.tag == dataset for row in rows):
        return without_measured_floor(published)
    return published


def comparison_markdown(results_dir: Path, datasets=("mnist", "cifar10"), tags: str = "*", models=None,
                        title: str = "Comparison: every model on protocol 2", exclude: str = ABLATION_TAGS) -> str:
    lines = [f"# {title} (ROC AUC, one normal class vs the rest)", "",
             "Written by `attn-ocgan compare` from the protocol tables in this folder; published rows from "
             "../shared/DESIGN.md. Ours: the model of the last epoch unless a note below says otherwise, never "
             "selected on test labels; " + SPREAD_NOTE + "; a mean over fewer than all classes says how many. "
             "The mean of a published row is the mean of its per-class values (the paper's own CIFAR-10 means are .6566 for OCGAN and .673 for attention "
             "OCGAN).", ""]
    for dataset in datasets:
        names = CLASS_NAMES[dataset]
        rows = measured_rows(results_dir, dataset, tags, models, exclude)
        lines += [f"## {dataset}", "", "| method | " + " | ".join(names) + " | mean |", "|" + "---|" * (len(names) + 2)]
        for row in rows:
            cells = [seed_cell(row.per_class.get(k, [])) for k in range(len(names))]
            lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {mean_over_classes_cell(row.per_class, len(names))} |")
        for name, values in published_rows(dataset, rows).items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.4f} |")
        if not rows:
            lines += ["", "No protocol results of ours yet."]
        lines.append("")
        for row in rows:
            chosen = "" if is_floor(row.model) else f"model: {'; '.join(row.selections)}; "  # a floor has no epochs
            lines.append(f"- {row.label}: seeds {row.seeds}, epochs {row.epochs}; {chosen}negatives: {'; '.join(row.negatives)}; "
                         f"rows in `{row.table}`; machine(s): {'; '.join(row.machines)}")
        lines.append("")
    return "\n".join(lines)


def write_comparison(results_dir: Path, out: Path, datasets=("mnist", "cifar10"), figure: Path | None = None,
                     tags: str = "*", models=None, title: str = "Comparison: every model on protocol 2",
                     exclude: str = ABLATION_TAGS) -> Path:
    """Write the Markdown table (and, if ``figure`` is given, a per-class dot plot) atomically."""
    atomic_write_text(out, comparison_markdown(results_dir, datasets, tags, models, title, exclude))
    if figure is not None:
        from ..viz.plots import save_comparison_plot

        panels = {}
        for dataset in datasets:
            rows = measured_rows(results_dir, dataset, tags, models, exclude)
            panels[dataset] = ([(r.label, r.model, {k: float(np.mean(v)) for k, v in r.per_class.items()}) for r in rows],
                               published_rows(dataset, rows), CLASS_NAMES[dataset])
        save_comparison_plot(figure, panels)
    return out
