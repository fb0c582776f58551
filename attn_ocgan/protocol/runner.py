"""Protocol 2 runner: every (class, seed) cell, resumable, one CSV row per finished cell."""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from pathlib import Path

from ..config import RunConfig
from ..data import dataset_label, load_splits, make_one_class
from ..engine.auc import NonFiniteScores
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import resolve_device
from ..engine.evaluation import evaluate_model
from ..engine.run_folder import CELL_RESULT, RunFolderInUse, run_folder_lock
from ..engine.thresholds import parse_threshold, resolve_threshold
from ..engine.trainer import (TrainingDiverged, check_score_weight_split, check_trainable, resolve_run_config,
                              selection_description, train)
from ..registry import create_model, preset_model_config, resolve_model_config
from ..errors import UserError
from ..utils.environment import machine_description
from ..utils.io import atomic_write_json
from .tables import (LAST_EPOCH, append_row, failures_path, read_rows, record_failure, refresh_markdown_table,
                     row_selection, same_cell)


def results_table_path(results_dir: Path, dataset: str, tag: str, model: str) -> Path:
    """``results_dir/<dataset>/<tag>_<model>.csv``: results are filed by dataset (``dataset_label``)."""
    return Path(results_dir) / dataset / f"{tag}_{model}.csv"


def parse_int_list(text: str, what: str) -> list[int]:
    """'0-9' or '0,2,5' or '1-3,7' -> sorted unique ints."""
    values: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low > high:
                    raise UserError(f"{what} range {part!r} runs backwards; write it low-high, e.g. {high}-{low}")
                values.update(range(low, high + 1))
            elif part:
                values.add(int(part))
    except ValueError:
        raise UserError(f"cannot read {what} {text!r}; write e.g. 0-9 or 0,2,5") from None
    if not values:
        raise UserError(f"no {what} given; write e.g. 0-9 or 0,2,5")
    return sorted(values)


def check_classes(classes: list[int], class_names, tag: str) -> None:
    """One-line UserError for a class index the dataset does not have (checked before any work starts)."""
    for normal_class in classes:
        if not 0 <= normal_class < len(class_names):
            raise UserError(f"class {normal_class} is out of range; {tag} has classes 0-{len(class_names) - 1} (--classes)")


def negatives_setting(config: RunConfig, data=None) -> str:
    """Which negatives trained the model: recorded with every result row (``data``: the cell's
    OneClassData, which names the known anomaly classes)."""
    if config.data.outlier_exposure:
        return f"outlier exposure: {config.data.outlier_exposure}"
    if config.data.known_anomalies:
        names = "" if data is None else " (" + ", ".join(data.class_names[c] for c in data.known_anomaly_classes) + ")"
        return (f"known anomalies: training images of {config.data.known_anomalies} other classes{names}, "
                f"drawn with seed {config.data.known_anomaly_seed}")
    return "strict one-class"


CellFailed = (TrainingDiverged, NonFiniteScores)  # recorded with the reason; the grid goes on


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (model, class, seed) cell of a protocol grid: its configuration, run folder and table.
    Paths are absolute, so a worker in another process or on another node finds the same files."""
    config: RunConfig  # normal class and seed set
    run_dir: Path
    csv_path: Path
    keys: dict  # CELL_KEYS: dataset (the tag), model, normal_class, seed, epochs
    selection: str
    command: str
    fingerprint: str = ""  # config_fingerprint of the grid, recorded with the row

    @property
    def label(self) -> str:
        return f"{self.keys['dataset']} {self.keys['model']} class {self.keys['normal_class']} seed {self.keys['seed']}"


@dataclasses.dataclass(frozen=True)
class Grid:
    """The cells of one protocol call still missing from its table, and what writing rows needs."""
    cells: list[Cell]
    csv_path: Path
    class_names: tuple[str, ...]
    dataset: str  # the data config's name (tables show its published rows)


def _cell_data(config: RunConfig, splits):
    """The cell's one-class split (its normal class, validation hold-out and known anomalies)."""
    return make_one_class(splits, config.data.normal_class, config.data.val_fraction, config.data.val_novel,
                          config.data.known_anomalies, config.data.known_anomaly_seed)


def run_cell(cell: Cell, splits=None, progress: bool = True, echo=print, on_epoch=None) -> tuple[dict, dict]:
    """Train (or resume) and evaluate one cell in its run folder; returns its table row and metrics.
    ``splits``: the dataset, already loaded (a worker elsewhere loads it from the cell's config);
    ``on_epoch``: as ``train``'s."""
    config = cell.config
    if splits is None:
        splits = load_splits(config.data.name, config.data.root, config.data.size, config.data.download,
                             config.data.variant, config.data.folder)
    data = _cell_data(config, splits)
    device = resolve_device(config.train.device)
    result = train(config, cell.run_dir, resume=True, overwrite=True, data=data, progress=progress, on_epoch=on_epoch)
    payload = read_checkpoint(result["selected_checkpoint"])
    _, model = model_from_checkpoint(payload, device)
    normal_class, seed = cell.keys["normal_class"], cell.keys["seed"]
    metrics = evaluate_model(model, data, cell.run_dir, title=f"{cell.keys['dataset']} {config.model} class {normal_class} seed {seed}",
                             threshold=resolve_threshold(parse_threshold("auto"), payload))
    chosen = "" if cell.selection == LAST_EPOCH else f", epoch {result['selected_epoch']} chosen on validation AUC {result['val_auc']:.4f}"
    echo(f"  AUC {metrics['auc']:.4f} ({result['train_seconds']:.0f} s training{chosen})")
    row = {
        **cell.keys, "auc": f"{metrics['auc']:.6f}",
        "train_seconds": f"{result['train_seconds']:.1f}", "negatives": negatives_setting(config, data),
        "machine": machine_description(device),
        "date": datetime.date.today().isoformat(), "command": cell.command, "selection": cell.selection,
        "config": cell.fingerprint,
        "selected_epoch": result["selected_epoch"],
        "val_auc": "" if result["val_auc"] is None else f"{result['val_auc']:.6f}",
        **{column: "" if metrics.get(key) is None else f"{metrics[key]:.6f}"
           for column, key in (("auc_seen", "auc_seen_anomalies"), ("auc_unseen", "auc_unseen_anomalies"))},
    }
    return row, metrics


def finish_cell(cell: Cell, splits=None, progress: bool = True, echo=print, on_epoch=None) -> tuple[dict, dict]:
    """``run_cell``, with its row and metrics kept in the run folder (``CELL_RESULT``) until the table
    has them: a cell whose runner (or Ray driver) stopped between finishing it and appending its row
    is recorded from there by the next runner, not trained or scored again. Call it holding the
    cell's run-folder lock."""
    saved = saved_cell_result(cell)
    if saved is not None:
        echo(f"  {cell.label} finished before its row was recorded; recording it from {cell.run_dir / CELL_RESULT}")
        return saved
    row, metrics = run_cell(cell, splits, progress, echo, on_epoch)
    atomic_write_json(cell.run_dir / CELL_RESULT, {"row": row, "metrics": metrics})
    return row, metrics


def saved_cell_result(cell: Cell) -> tuple[dict, dict] | None:
    """The row and metrics ``finish_cell`` kept for this very cell (same keys, selection and
    configuration fingerprint), else None."""
    try:
        saved = json.loads((cell.run_dir / CELL_RESULT).read_text())
        row, metrics = saved["row"], saved["metrics"]
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: the cell is run
        return None
    if not (same_cell(row, cell.keys) and row.get("selection") == cell.selection and row.get("config") == cell.fingerprint):
        return None
    return row, metrics


# What may differ between the rows of one table: the cell (class, seed), where the data is found,
# the hardware and the monitoring.
NOT_FINGERPRINTED = {"data": ("normal_class", "root", "download"), "train": ("seed", "threads", "device", "eval_every")}
DATA_DERIVED_MODEL_FIELDS = ("in_channels", "image_size")  # set from the data (resolve_model_config), fingerprinted with it


def _canonical(value):
    """One spelling per setting: 1 and 1.0, (1, 2) and [1, 2] are the same value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


def _non_default(section, skipped=()) -> dict:
    """A config section's fields that differ from its defaults: an option added later with a default
    that keeps the old behaviour leaves the fingerprint of earlier rows unchanged."""
    default = type(section)()
    return {field.name: _canonical(getattr(section, field.name)) for field in dataclasses.fields(section)
            if field.name not in skipped and _canonical(getattr(section, field.name)) != _canonical(getattr(default, field.name))}


def config_fingerprint(config: RunConfig) -> str:
    """12 hex digits naming everything a grid's cells share that changes what they train: the model,
    its options, the data setting and the schedule. Rows of one table must share it, or its means would
    mix settings. Values equal to the defaults are left out (so are model options equal to the model's
    default or dataset preset), so that one setting has one fingerprint however it was spelled, and a run
    folder's resolved config (every model option filled in) has the fingerprint of its grid."""
    model_defaults = dataclasses.asdict(preset_model_config(config.model, config.data.name))
    settings = {"model": config.model,
                "model_args": {key: _canonical(value) for key, value in config.model_args.items()
                               if key not in DATA_DERIVED_MODEL_FIELDS
                               and (key not in model_defaults or _canonical(value) != _canonical(model_defaults[key]))}}
    for field in dataclasses.fields(config):  # the data and train sections (and any added later)
        if dataclasses.is_dataclass(getattr(config, field.name)):
            settings[field.name] = _non_default(getattr(config, field.name), NOT_FINGERPRINTED.get(field.name, ()))
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def is_done(cell: Cell) -> bool:
    """Whether the cell's row is in its table."""
    return any(same_cell(row, cell.keys) for row in read_rows(cell.csv_path))


def check_cells_build(cells: list[Cell], splits) -> None:
    """Build every class's data split and the first cell's model, so a bad option (an unknown model
    argument, a selection without a validation split, a class without training images) is a one-line
    error before any cell trains or is submitted."""
    checked = {cells[0].config.data.normal_class}  # checked below, with its model
    for cell in cells[1:]:  # one split at a time: a dataset's splits together would hold it ten times over
        if cell.config.data.normal_class not in checked:
            checked.add(cell.config.data.normal_class)
            check_trainable(cell.config, _cell_data(cell.config, splits))
    data = _cell_data(cells[0].config, splits)
    check_trainable(cells[0].config, data)
    config = resolve_run_config(cells[0].config, data)
    model_config = resolve_model_config(config.model, config.data.name, config.model_args, data.in_channels, data.image_size)
    check_score_weight_split(create_model(config.model, model_config), data)


def grid_cells(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
               command: str, class_names: tuple[str, ...], tag: str | None = None) -> tuple[list[Cell], Path]:
    """Every cell of ``classes`` x ``seeds``, finished or not, with the table they belong to, after the
    checks that need no model (classes, one selection per table). Reads files only."""
    label = dataset_label(base.data.name, base.data.root, base.data.folder)
    if tag is None:  # results of another variant or negatives setting go to their own table
        tag = label + (f"-{base.data.variant}" if base.data.name == "coco32" else "")
        tag += f"-oe-{base.data.outlier_exposure.split(':')[0]}" if base.data.outlier_exposure else ""
        tag += f"-known{base.data.known_anomalies}" if base.data.known_anomalies else ""
        tag += "-valsel" if base.train.select_epoch == "validation" else ""
    csv_path = results_table_path(Path(results_dir), label, tag, base.model).absolute()
    check_classes(classes, class_names, tag)
    selection = selection_description(base)
    rows = [r for r in read_rows(csv_path) if r["dataset"] == tag and r["model"] == base.model]
    other = sorted({row_selection(r) for r in rows} - {selection})
    if other:  # one table, one way of choosing the model: its means must not mix them
        raise UserError(f"{csv_path} holds rows whose model is the {other[0]}, not the {selection}; "
                        f"pass another --tag (e.g. {tag}-valsel) for this selection")
    other_epochs = sorted({int(r["epochs"]) for r in rows} - {base.train.epochs})
    if other_epochs:  # nor training lengths (its means would average them like seeds)
        raise UserError(f"{csv_path} holds rows trained for {other_epochs[0]} epochs, not {base.train.epochs}; "
                        f"pass another --tag (e.g. {tag}-e{base.train.epochs}) for this schedule")
    fingerprint = config_fingerprint(base)
    if any(r.get("config") and r["config"] != fingerprint for r in rows):  # nor settings (rows before the column: unknown)
        raise UserError(f"{csv_path} holds rows trained with other settings (model options, data setting or schedule) "
                        "than these; pass another --tag for this setting")
    if base.data.root:  # workers in other processes or on other nodes: no relative paths
        base = dataclasses.replace(base, data=dataclasses.replace(base.data, root=str(Path(base.data.root).absolute())))
    cells = []
    for normal_class in classes:
        for seed in seeds:
            config = dataclasses.replace(base, data=dataclasses.replace(base.data, normal_class=normal_class),
                                         train=dataclasses.replace(base.train, seed=seed))
            name = f"class{normal_class}_seed{seed}_e{base.train.epochs}" + ("_valsel" if selection != LAST_EPOCH else "")
            keys = {"dataset": tag, "model": base.model, "normal_class": normal_class, "seed": seed, "epochs": base.train.epochs}
            cells.append(Cell(config, (Path(runs_dir) / f"{tag}_{base.model}" / name).absolute(), csv_path, keys, selection,
                              command, fingerprint))
    return cells, csv_path


def plan_protocol(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
                  command: str, tag: str | None = None, echo=print) -> tuple[Grid, object]:
    """The cells of ``classes`` x ``seeds`` not yet in the table, after every check that can fail
    before training (classes, table selection, the model's options); returns the grid and the loaded
    dataset splits."""
    splits = load_splits(base.data.name, base.data.root, base.data.size, base.data.download, base.data.variant,
                         base.data.folder)
    all_cells, csv_path = grid_cells(base, classes, seeds, results_dir, runs_dir, command, splits.class_names, tag)
    cells = []
    for cell in all_cells:
        if is_done(cell):
            echo(f"skip {cell.label}: already in {csv_path}")
        else:
            cells.append(cell)
    if cells:
        check_cells_build(cells, splits)
        for folder in (csv_path.parent, Path(runs_dir)):  # a place that takes no folder fails now, not after a cell trained
            folder.mkdir(parents=True, exist_ok=True)
    refresh_markdown_table(csv_path, all_cells[0].keys["dataset"], base.model, splits.class_names, dataset=base.data.name)
    return Grid(cells, csv_path, tuple(splits.class_names), base.data.name), splits


def record_row(grid: Grid, cell: Cell, row: dict, metrics: dict, echo=print) -> None:
    if not append_row(grid.csv_path, row, grid.class_names, dataset=grid.dataset, metrics=metrics):
        echo(f"  {cell.label} was already in {grid.csv_path}; its row is kept")


def record_cell_failure(grid: Grid, cell: Cell, reason: str) -> None:
    record_failure(grid.csv_path, cell.keys, reason, grid.class_names, dataset=grid.dataset)


def raise_for_failures(grid: Grid, failures: list[Cell]) -> None:
    if failures:
        names = ", ".join(f"class {c.keys['normal_class']} seed {c.keys['seed']}" for c in failures)
        raise UserError(f"{len(failures)} cell(s) failed ({names}); the others are in {grid.csv_path}; "
                        f"reasons in {failures_path(grid.csv_path)}")


def run_protocol(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
                 command: str, tag: str | None = None, progress: bool = True, echo=print) -> Path:
    """Train and evaluate each missing (class, seed) cell in this process, one after another;
    returns the CSV path, ``results_dir/<dataset>/<tag>_<model>.csv`` (``results_table_path``).
    ``protocol/distributed.py`` runs the same grid as Ray tasks."""
    grid, splits = plan_protocol(base, classes, seeds, results_dir, runs_dir, command, tag, echo)
    failures = []
    for cell in grid.cells:
        try:
            with run_folder_lock(cell.run_dir):  # the cell's claim: another runner on this tag skips it
                if is_done(cell):
                    echo(f"skip {cell.label}: finished by another runner")
                    continue
                echo(f"train {cell.label} -> {cell.run_dir}")
                row, metrics = finish_cell(cell, splits, progress, echo)
                record_row(grid, cell, row, metrics, echo)
        except RunFolderInUse:
            echo(f"skip {cell.label}: another runner is training it in {cell.run_dir}")
        except CellFailed as error:
            failures.append(cell)
            record_cell_failure(grid, cell, str(error))
            echo(f"  FAILED {cell.label}: {error}")
    raise_for_failures(grid, failures)
    return grid.csv_path
