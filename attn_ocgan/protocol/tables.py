"""Protocol result tables: the CSV of finished cells, its Markdown view beside the published rows,
and the per-cell metrics log. Written atomically, under a file lock (several runners may share a table)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..reference import PAPER_ROWS, is_floor, without_measured_floor
from ..utils.io import atomic_write_text, file_lock

CSV_COLUMNS = ["dataset", "model", "normal_class", "seed", "epochs", "auc", "train_seconds", "negatives", "machine", "date",
               "command", "selection", "selected_epoch", "val_auc", "auc_seen", "auc_unseen", "config"]
LAST_EPOCH = "last epoch"  # the selection of rows written before the column existed


def is_protocol_table(csv_path: Path) -> bool:
    """Whether a CSV's header has a protocol table's columns (a results folder holds other CSVs too)."""
    try:
        with Path(csv_path).open(newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return set(PROTOCOL_COLUMNS) <= set(header)


def read_rows(csv_path: Path) -> list[dict]:
    """The rows of a results table (none if it does not exist); in a protocol table, a row whose class,
    seed, epochs or AUC is not a number is a UserError naming it (the table was edited or damaged)."""
    if not csv_path.is_file():
        return []
    try:
        with csv_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{csv_path} is not a results table ({error}); restore it or pass another results folder") from None
    if not set(PROTOCOL_COLUMNS) <= set(reader.fieldnames or ()):  # e.g. a sweep's table
        return rows
    for number, row in enumerate(rows, 2):
        for key, kind in (("normal_class", int), ("seed", int), ("epochs", int), ("auc", float)):
            try:
                kind(row.get(key))
            except (TypeError, ValueError):
                raise UserError(f"{csv_path}, line {number}: {key} {row.get(key)!r} is not a number; fix or remove "
                                "that row (attn-ocgan protocol writes it again)") from None
    return rows


def _write_rows(csv_path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(csv_path, buffer.getvalue())


def row_selection(row: dict) -> str:
    return row.get("selection") or LAST_EPOCH


def metrics_log_path(csv_path: Path) -> Path:
    """``<tag>_<model>.metrics.jsonl`` beside the table: each cell's whole metrics.json (AUC per novel
    class, score means, for attention models the AUC of each GAN and the mask statistics), so the
    diagnostics outlive the run folders (``attn-ocgan report score-components --metrics``)."""
    return Path(csv_path).with_suffix(".metrics.jsonl")


def read_metrics_log(path: Path, required: tuple[str, ...] = ()) -> list[dict]:
    """The entries of a JSON-lines log (one object a line, each with the ``required`` keys); anything
    else (a line that is not such an object, a file that is not text) is a UserError."""
    path = Path(path)
    if not path.is_file():
        return []
    hint = "pass a <tag>_<model>.metrics.jsonl file written by attn-ocgan protocol"
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file; {hint}") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                raise UserError(f"{path}, line {number}, is not a JSON object; {hint}")
            missing = [key for key in required if key not in entry]
            if missing:
                raise UserError(f"{path}, line {number}, has no {', '.join(missing)}; {hint}")
            entries.append(entry)
    return entries


def failures_path(csv_path: Path) -> Path:
    """``<tag>_<model>.failed.jsonl`` beside the table: cells that stopped (e.g. diverged), with the reason."""
    return Path(csv_path).with_suffix(".failed.jsonl")


CELL_KEYS = ("dataset", "model", "normal_class", "seed", "epochs")
LOGGED_CELL_KEYS = (*CELL_KEYS, "selected_epoch", "metrics")  # what every entry of a metrics log has
PROTOCOL_COLUMNS = (*CELL_KEYS, "auc")  # the columns that make a CSV a protocol table


def same_cell(a: dict, b: dict) -> bool:
    return all(str(a[key]) == str(b[key]) for key in CELL_KEYS)


def refresh_markdown_table(csv_path: Path, tag: str, model: str, class_names, dataset: str | None = None) -> None:
    """Rewrite the Markdown view of an existing table from its rows (under the table's lock), so that
    re-running a finished protocol brings the view up to the current format."""
    if not Path(csv_path).is_file():
        return
    with file_lock(csv_path):
        if any(r["model"] == model and r["dataset"] == tag for r in read_rows(csv_path)):
            write_markdown_table(csv_path, tag, model, class_names, dataset=dataset)


def record_failure(csv_path: Path, cell: dict, reason: str, class_names, dataset: str | None = None) -> None:
    """Log a cell that stopped (replacing an older failure of the same cell) and show it under the table."""
    with file_lock(csv_path):
        log = failures_path(csv_path)
        kept = [entry for entry in read_metrics_log(log) if not same_cell(entry, cell)]
        entry = {**{key: cell[key] for key in CELL_KEYS}, "reason": reason}
        atomic_write_text(log, "".join(json.dumps(e) + "\n" for e in kept + [entry]))
        write_markdown_table(csv_path, cell["dataset"], cell["model"], class_names, dataset=dataset)


def append_row(csv_path: Path, row: dict, class_names, dataset: str | None = None, metrics: dict | None = None) -> bool:
    """Add one (class, seed) result to a protocol table and rewrite its Markdown view (and, given
    ``metrics``, add the cell's metrics to ``metrics_log_path``), under a file lock: other processes
    may append other cells of the same table. A cell already in the table is not added twice (returns
    False); a cell that failed before leaves the failure log."""
    with file_lock(csv_path):
        rows = read_rows(csv_path)
        if any(same_cell(r, row) for r in rows):
            return False
        if metrics is not None:  # first: the row in the CSV is the commit (a kill before it leaves the cell to do)
            log = metrics_log_path(csv_path)
            cell = {key: row[key] for key in ("dataset", "model", "normal_class", "seed", "epochs", "selection", "selected_epoch")}
            kept = [entry for entry in read_metrics_log(log) if not same_cell(entry, row)]  # a killed append's entry
            atomic_write_text(log, "".join(json.dumps(entry) + "\n" for entry in kept + [{**cell, "metrics": metrics}]))
        _write_rows(csv_path, rows + [row])
        log = failures_path(csv_path)
        failures = read_metrics_log(log)
        if any(same_cell(entry, row) for entry in failures):
            atomic_write_text(log, "".join(json.dumps(e) + "\n" for e in failures if not same_cell(e, row)))
        write_markdown_table(csv_path, row["dataset"], row["model"], class_names, dataset=dataset)
    return True


def _class_means(rows: list[dict], column: str, n_classes: int) -> list[float]:
    """The per-class means of ``column`` over the classes that have a value."""
    means = []
    for k in range(n_classes):
        values = [float(r[column]) for r in rows if int(r["normal_class"]) == k and r.get(column)]
        if values:
            means.append(float(np.mean(values)))
    return means


def aucs_by_class(rows: list[dict]) -> dict[int, list[float]]:
    """Each class's AUCs (one per seed) in table rows."""
    per_class: dict[int, list[float]] = {}
    for row in rows:
        per_class.setdefault(int(row["normal_class"]), []).append(float(row["auc"]))
    return per_class


def mean_over_classes_cell(per_class: dict[int, list[float]], n_classes: int) -> str:
    """The mean over classes of the per-class means, in bold, saying how many classes it covers
    when not all of them."""
    means = [float(np.mean(values)) for values in per_class.values() if values]
    if not means:
        return "—"
    return f"**{np.mean(means):.4f}**" + ("" if len(means) == n_classes else f" ({len(means)}/{n_classes} classes)")


def _mean_cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if values else "—"


SPREAD_NOTE = "± is the sample std over seeds (ddof 1)"


def seed_cell(values: list[float]) -> str:
    """One class's AUCs over seeds as a table cell: the mean, and ± the sample standard deviation
    (ddof 1, the unbiased estimate for a handful of seeds) when there are several."""
    if not values:
        return "—"
    return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")


def seed_spread_line(rows: list[dict], class_names) -> str | None:
    """With several seeds: the mean over the classes that have every seed, per seed, and its mean ±
    sample std: the spread of a table mean (the per-class ± says less, its errors partly cancel)."""
    seeds = sorted({int(r["seed"]) for r in rows})
    if len(seeds) < 2:
        return None
    auc = {(int(r["normal_class"]), int(r["seed"])): float(r["auc"]) for r in rows}
    shared = [k for k in range(len(class_names)) if all((k, seed) in auc for seed in seeds)]
    if not shared:
        return None
    means = [float(np.mean([auc[k, seed] for k in shared])) for seed in seeds]
    return (f"Seed spread of the mean over the {len(shared)} classes with every seed ({', '.join(class_names[k] for k in shared)}): "
            + ", ".join(f"{m:.4f} (seed {seed})" for seed, m in zip(seeds, means))
            + f"; {np.mean(means):.4f} ± {np.std(means, ddof=1):.4f}.")


def reference_rows(dataset: str, tag: str) -> dict[str, list[float]]:
    """The published rows for this dataset: MNIST (not mnist5k, whose test set differs) and CIFAR-10
    (also as an image folder whose tag names it, e.g. --tag cifar10-jpeg)."""
    if dataset == "mnist":
        return PAPER_ROWS["mnist"]
    if dataset == "cifar10" or tag == "cifar10" or tag.startswith("cifar10-"):
        return PAPER_ROWS["cifar10"]
    return {}


def write_markdown_table(csv_path: Path, tag: str, model: str, class_names, dataset: str | None = None) -> Path:
    """Per-class mean (± sample std over seeds) AUC beside the published rows for this dataset."""
    rows = [r for r in read_rows(csv_path) if r["model"] == model and r["dataset"] == tag]
    n_classes = len(class_names)
    per_class = aucs_by_class(rows)
    header = "| method | " + " | ".join(class_names) + " | mean |"
    lines = [f"# {tag}: {model}, protocol 2 (ROC AUC, one normal class vs the rest)", "",
             header, "|" + "---|" * (n_classes + 2)]
    cells = [seed_cell(per_class.get(k, [])) for k in range(n_classes)]
    overall = mean_over_classes_cell(per_class, n_classes)
    floor = is_floor(model)
    lines.append(f"| {model} ({'floor' if floor else 'ours'}) | " + " | ".join(cells) + f" | {overall} |")
    for column, label in (("auc_seen", "seen anomaly classes"), ("auc_unseen", "unseen anomaly classes")):
        if any(r.get(column) for r in rows):  # --known-anomalies: the AUC against each group apart
            lines.append(f"| {model}: {label} only | " + " | ".join(
                _mean_cell([float(r[column]) for r in rows if int(r["normal_class"]) == k and r.get(column)])
                for k in range(n_classes)) + f" | {_mean_cell(_class_means(rows, column, n_classes))} |")
    published = reference_rows(dataset or tag, tag)
    for name, values in (without_measured_floor(published) if floor else published).items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.4f} |")
    seeds = sorted({int(r["seed"]) for r in rows})
    epochs = sorted({int(r["epochs"]) for r in rows})
    commands = sorted({r["command"] for r in rows})
    if floor:
        summary = "Floor: training-free, fitted on the normal training images only (attn-ocgan report pixel-floors)."
    else:
        selections = sorted({row_selection(r) for r in rows})
        chosen = sorted({int(r["selected_epoch"]) for r in rows if row_selection(r) != LAST_EPOCH and r.get("selected_epoch")})
        summary = (f"Ours: seeds {seeds}, epochs {epochs}; model: {'; '.join(selections)}"
                   + (f" (chosen epochs {chosen})" if chosen else "") + f"; never selected on test labels; {SPREAD_NOTE}.")
    lines += ["", f"{summary} Rows: {csv_path.name}."]
    spread = seed_spread_line(rows, class_names)
    if spread:
        lines += ["", spread]
    lines += ["", "Produced by:", ""]
    lines += [f"    {c}" for c in commands]
    by_negatives: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: int(r["normal_class"])):
        names = by_negatives.setdefault(row.get("negatives") or "strict one-class", [])
        name = class_names[int(row["normal_class"])]
        if name not in names:
            names.append(name)
    if len(by_negatives) <= 1:
        lines += ["", "Negatives seen in training: " + "; ".join(by_negatives) + "."]
    else:  # e.g. --known-anomalies: other classes for each normal class
        lines += ["", "Negatives seen in training, by normal class: "
                  + "; ".join(f"{', '.join(names)}: {text}" for text, names in by_negatives.items()) + "."]
    failures = [f for f in read_metrics_log(failures_path(csv_path)) if f["model"] == model and f["dataset"] == tag]
    if failures:
        lines += ["", "Failed cells (no row; run the protocol again to retry them): " + "; ".join(
            f"{class_names[int(f['normal_class'])]} seed {f['seed']}: {f['reason']}" for f in failures) + "."]
    machines = sorted({r["machine"] for r in rows})
    lines += ["", "Machine(s): " + "; ".join(machines), ""]
    md_path = csv_path.with_suffix(".md")
    atomic_write_text(md_path, "\n".join(lines))
    return md_path
