"""The proxy sweep: candidate recipes compared on the validation split, epoch by epoch.

Each candidate is one protocol run folder (``runs/protocol/<tag>_<model>``) trained with
``--select-epoch validation``; every cell in it wrote ``validation.jsonl`` (the trainer's
``validation_record`` per epoch: the score's AUC, each score component's AUC and the masks'
statistics on held-out normal and other-class *training* images). Test images are never read, so
the table may choose a default. One row per recipe and class (seed means, spread over seeds), a
mean row per recipe, and a figure of the curves.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...engine.trainer import read_validation_trace
from ...errors import UserError
from ...utils.environment import machine_description
from ...utils.io import atomic_write_text

CELL_PATTERN = re.compile(r"class(?P<normal_class>\d+)_seed(?P<seed>\d+)_")


@dataclass
class Trace:
    recipe: str
    normal_class: int
    seed: int
    records: list[dict]
    planned_epochs: int | None = None  # the run's --epochs (config.yaml); more than len(records): still training

    @property
    def epochs_cell(self) -> str:
        done = len(self.records)
        return str(done) if not self.planned_epochs or done >= self.planned_epochs else f"{done} of {self.planned_epochs}"


def read_traces(folders) -> list[Trace]:
    """Every cell's validation trace below the protocol run folders (recipe = folder name)."""
    traces = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder; pass protocol run folders such as runs/protocol/<tag>_<model>")
        for cell in sorted(p for p in folder.iterdir() if p.is_dir()):
            match = CELL_PATTERN.match(cell.name)
            records = read_validation_trace(cell) if match else []
            if records:
                traces.append(Trace(folder.name, int(match["normal_class"]), int(match["seed"]), records, _planned_epochs(cell)))
        if not any(t.recipe == folder.name for t in traces):
            raise UserError(f"{folder} has no cell with a validation.jsonl; train it with "
                            "'attn-ocgan protocol ... --select-epoch validation'")
    return traces


def _planned_epochs(cell: Path) -> int | None:
    import yaml

    try:
        return int(yaml.safe_load((cell / "config.yaml").read_text())["train"]["epochs"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def _value(record: dict, key: str) -> float:
    """A number of one epoch's record: 'auc', 'component:<name>', or 'masks:<group>:<statistic>'."""
    if key == "auc":
        return record["auc"]
    kind, *path = key.split(":")
    if kind == "component":
        return record.get("component_aucs", {}).get(path[0], np.nan)
    masks = record.get("masks") or {}
    return masks.get(path[0], {}).get(path[1], np.nan)


def curve(trace: Trace, key: str) -> np.ndarray:
    return np.array([_value(r, key) for r in trace.records], dtype=float)


def _mean_std(values) -> str:
    values = np.array([v for v in values if np.isfinite(v)])
    if len(values) == 0:
        return "—"
    return f"{values.mean():.3f}" + (f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else "")


def component_names(traces: list[Trace]) -> list[str]:
    names = []
    for trace in traces:
        for name in trace.records[-1].get("component_aucs", {}):
            if name not in names:
                names.append(name)
    return names


def sweep_rows(traces: list[Trace], class_names: dict[int, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Table header and rows: per recipe and class, at the last epoch (seed mean ± std) and the best epoch."""
    components = component_names(traces)
    header = (["recipe", "class", "seeds", "epochs", "validation AUC, last epoch", "best epoch (AUC)"]
              + [f"{name} alone, last" for name in components]
              + ["mask area (normal)", "decisiveness (normal)", "area novel − normal"])
    rows = []
    recipes = list(dict.fromkeys(t.recipe for t in traces))
    for recipe in recipes:
        mine = [t for t in traces if t.recipe == recipe]
        for normal_class in sorted({t.normal_class for t in mine}):
            cells = [t for t in mine if t.normal_class == normal_class]
            last = [t.records[-1] for t in cells]
            best = [max(t.records, key=lambda r: r["auc"]) for t in cells]
            rows.append([recipe, (class_names or {}).get(normal_class, str(normal_class)),
                         ",".join(str(t.seed) for t in cells), "/".join(t.epochs_cell for t in cells),
                         _mean_std(_value(r, "auc") for r in last),
                         ", ".join(f"{r['epoch']} ({r['auc']:.3f})" for r in best)]
                        + [_mean_std(_value(r, f"component:{name}") for r in last) for name in components]
                        + [_mean_std(_value(r, "masks:normal:area") for r in last),
                           _mean_std(_value(r, "masks:normal:decisiveness") for r in last),
                           _mean_std(_value(r, "masks:novel:area") - _value(r, "masks:normal:area") for r in last)])
        per_class = {}
        for trace in mine:  # mean over the recipe's classes of the seed-mean last-epoch AUC
            per_class.setdefault(trace.normal_class, []).append(trace.records[-1]["auc"])
        rows.append([f"**{recipe}**", f"mean of {len(per_class)} classes", "", "",
                     f"**{np.mean([np.mean(v) for v in per_class.values()]):.3f}**", ""] + [""] * (len(components) + 3))
    return header, rows


def save_curves(path: Path, traces: list[Trace], class_names: dict[int, str] | None = None) -> None:
    """Rows: classes; columns: validation AUC, each component's AUC, mask area, decisiveness; one
    line per recipe (seed mean)."""
    from ...viz.plots import plt, save_figure

    keys = (["auc"] + [f"component:{name}" for name in component_names(traces)]
            + ["masks:normal:area", "masks:normal:decisiveness"])
    titles = (["validation AUC"] + [f"{name} alone" for name in component_names(traces)]
              + ["mask area (normal)", "decisiveness (normal)"])
    classes = sorted({t.normal_class for t in traces})
    recipes = list(dict.fromkeys(t.recipe for t in traces))
    figure, axes = plt.subplots(len(classes), len(keys), figsize=(3.2 * len(keys), 2.6 * len(classes)), squeeze=False)
    for row, normal_class in enumerate(classes):
        for column, (key, title) in enumerate(zip(keys, titles)):
            axis = axes[row][column]
            for recipe in recipes:
                curves = [curve(t, key) for t in traces if t.recipe == recipe and t.normal_class == normal_class]
                if not curves:
                    continue
                length = min(len(c) for c in curves)
                axis.plot(np.arange(1, length + 1), np.mean([c[:length] for c in curves], axis=0), label=recipe)
            axis.set_title(f"{(class_names or {}).get(normal_class, normal_class)}: {title}", fontsize=9)
            axis.set_xlabel("epoch", fontsize=8)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def write_validation_sweep(folders, out: Path, command: str, class_names: dict[int, str] | None = None) -> int:
    """Write the markdown table ``out`` and its figure (``out`` with .png); returns the number of cells."""
    traces = read_traces(folders)
    header, rows = sweep_rows(traces, class_names)
    figure = Path(out).with_suffix(".png")
    save_curves(figure, traces, class_names)
    lines = ["# Proxy sweep on the validation split (training images only)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Validation split: held-out normal training images vs training images of the other classes; "
              "test images are never read. Last epoch: seed mean ± std (ddof 1); best epoch: per seed; "
              "'3 of 8' epochs: a run still training (its last recorded epoch is shown). Decisiveness "
              "is mean |M - 0.5| (0 grey, 0.5 binary); area novel − normal > 0 means the masks keep more of novel images.",
              "", f"![curves]({figure.name})", "", "Produced by:", "", f"    {command}", "",
              f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    atomic_write_text(Path(out), "\n".join(lines))
    return len(traces)
