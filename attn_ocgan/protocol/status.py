"""Where a protocol grid stands (``attn-ocgan protocol ... --status``): each cell done, failed,
running, part-trained or still to do, and roughly how much training is left. Reads the table, its
failure log, the cells' lock files and checkpoint headers; trains and writes nothing."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from ..data.datasets import dataset_class_names
from ..engine.checkpoint import checkpoint_epoch
from ..engine.run_folder import lock_holder
from ..engine.trainer import checkpoint_path
from .runner import Cell, grid_cells, saved_cell_result
from .tables import failures_path, read_metrics_log, read_rows, same_cell


@dataclass(frozen=True)
class CellState:
    cell: Cell
    state: str  # "done", "failed", "running", "part-trained", "to do"
    detail: str
    epochs_left: int


def cell_state(cell: Cell, rows: list[dict], failures: list[dict]) -> CellState:
    epochs = cell.keys["epochs"]
    row = next((r for r in rows if same_cell(r, cell.keys)), None)
    if row is not None:
        return CellState(cell, "done", f"AUC {float(row['auc']):.4f}", 0)
    trained = checkpoint_epoch(checkpoint_path(cell.run_dir)) if cell.run_dir.is_dir() else None
    progress = f"epoch {trained} of {epochs}" if trained else ""
    left = epochs - (trained or 0)
    holder = lock_holder(cell.run_dir)
    if holder is not None:
        return CellState(cell, "running", ", ".join(filter(None, [progress, holder])), left)
    failure = next((f for f in failures if same_cell(f, cell.keys)), None)
    if failure is not None:
        return CellState(cell, "failed", f"{failure['reason']} (the next run retries it)", epochs)
    if trained:
        if trained >= epochs:
            scored = ("trained and scored; the next run records its row" if saved_cell_result(cell) is not None
                      else "trained, not yet scored")
        else:
            scored = f"{progress}; the next run resumes it"
        return CellState(cell, "part-trained", scored, left)
    return CellState(cell, "to do", "", epochs)


def seconds_per_epoch(rows: list[dict], keys: dict) -> tuple[float, int] | None:
    """The median training seconds per epoch of the table's finished cells of this grid's model and
    epochs, and how many cells it is from (None before the first)."""
    rates = [float(r["train_seconds"]) / int(r["epochs"]) for r in rows
             if r["dataset"] == keys["dataset"] and r["model"] == keys["model"] and int(r["epochs"]) == keys["epochs"]
             and r.get("train_seconds")]
    return (statistics.median(rates), len(rates)) if rates else None


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def protocol_status(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
                    tag: str | None = None) -> tuple[list[CellState], list[str]]:
    """The state of every cell of the grid and the lines that report it."""
    class_names = dataset_class_names(base.data.name, base.data.root, base.data.folder)
    cells, csv_path = grid_cells(base, classes, seeds, results_dir, runs_dir, "", class_names, tag)
    rows = read_rows(csv_path)
    failures = read_metrics_log(failures_path(csv_path))
    states = [cell_state(cell, rows, failures) for cell in cells]
    keys = cells[0].keys
    done = sum(state.state == "done" for state in states)
    per_cell = f"{keys['epochs']} epoch{'s' if keys['epochs'] != 1 else ''} a cell"
    lines = [f"{keys['dataset']} {keys['model']}, {per_cell} ({csv_path}): {done} of {len(states)} cells done"]
    for state in states:
        normal_class = state.cell.keys["normal_class"]
        where = f"class {normal_class} ({class_names[normal_class]}) seed {state.cell.keys['seed']}"
        lines.append(f"  {where:<32} {state.state:<13} {state.detail}".rstrip())
    epochs_left = sum(state.epochs_left for state in states)
    rate = seconds_per_epoch(rows, keys)
    if epochs_left and rate is not None:
        lines.append(f"training left: {epochs_left} epochs, about {_duration(epochs_left * rate[0])} in one process "
                     f"({rate[0]:.0f} s per epoch, the median of {rate[1]} finished cell(s); scoring not included)")
    elif epochs_left:
        lines.append(f"training left: {epochs_left} epochs (no finished cell yet to time them by)")
    return states, lines
