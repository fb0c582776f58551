"""Protocol 2 runner: every (class, seed) cell, resumable, one CSV row per finished cell."""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from ..config import RunConfig
from ..data import dataset_label, load_splits, make_one_class
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import resolve_device
from ..engine.evaluation import NonFiniteScores, evaluate_model
from ..engine.run_folder import RunFolderInUse, run_folder_lock
from ..engine.thresholds import parse_threshold, resolve_threshold
from ..engine.trainer import TrainingDiverged, selection_description, train
from ..errors import UserError
from ..utils.environment import machine_description
from .tables import LAST_EPOCH, append_row, failures_path, read_rows, record_failure, row_selection


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


def _is_done(rows: list[dict], dataset: str, model: str, normal_class: int, seed: int, epochs: int) -> bool:
    return any(
        r["dataset"] == dataset and r["model"] == model and int(r["normal_class"]) == normal_class
        and int(r["seed"]) == seed and int(r["epochs"]) == epochs
        for r in rows
    )


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


def _run_cell(config: RunConfig, data, run_dir: Path, cell_keys: dict, selection: str, command: str, device,
              progress: bool, echo) -> tuple[dict, dict]:
    """Train (or resume) and evaluate one cell in its locked run folder; returns its table row and metrics."""
    result = train(config, run_dir, resume=True, overwrite=True, data=data, progress=progress)
    payload = read_checkpoint(result["selected_checkpoint"])
    _, model = model_from_checkpoint(payload, device)
    normal_class, seed = cell_keys["normal_class"], cell_keys["seed"]
    metrics = evaluate_model(model, data, run_dir, title=f"{cell_keys['dataset']} {config.model} class {normal_class} seed {seed}",
                             threshold=resolve_threshold(parse_threshold("auto"), payload))
    chosen = "" if selection == LAST_EPOCH else f", epoch {result['selected_epoch']} chosen on validation AUC {result['val_auc']:.4f}"
    echo(f"  AUC {metrics['auc']:.4f} ({result['train_seconds']:.0f} s training{chosen})")
    row = {
        **cell_keys, "auc": f"{metrics['auc']:.6f}",
        "train_seconds": f"{result['train_seconds']:.1f}", "negatives": negatives_setting(config, data),
        "machine": machine_description(device),
        "date": datetime.date.today().isoformat(), "command": command, "selection": selection,
        "selected_epoch": result["selected_epoch"],
        "val_auc": "" if result["val_auc"] is None else f"{result['val_auc']:.6f}",
        **{column: "" if metrics.get(key) is None else f"{metrics[key]:.6f}"
           for column, key in (("auc_seen", "auc_seen_anomalies"), ("auc_unseen", "auc_unseen_anomalies"))},
    }
    return row, metrics


def run_protocol(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
                 command: str, tag: str | None = None, progress: bool = True, echo=print) -> Path:
    """Train and evaluate each missing (class, seed) cell; returns the CSV path,
    ``results_dir/<dataset>/<tag>_<model>.csv`` (``results_table_path``)."""
    label = dataset_label(base.data.name, base.data.root, base.data.folder)
    if tag is None:  # results of another variant or negatives setting go to their own table
        tag = label + (f"-{base.data.variant}" if base.data.name == "coco32" else "")
        tag += f"-oe-{base.data.outlier_exposure.split(':')[0]}" if base.data.outlier_exposure else ""
        tag += f"-known{base.data.known_anomalies}" if base.data.known_anomalies else ""
        tag += "-valsel" if base.train.select_epoch == "validation" else ""
    results_dir = Path(results_dir)
    device = resolve_device(base.train.device)
    csv_path = results_table_path(results_dir, label, tag, base.model)
    splits = load_splits(base.data.name, base.data.root, base.data.size, base.data.download, base.data.variant,
                         base.data.folder)
    check_classes(classes, splits.class_names, tag)
    selection = selection_description(base)
    other = sorted({row_selection(r) for r in read_rows(csv_path) if r["dataset"] == tag and r["model"] == base.model} - {selection})
    if other:  # one table, one way of choosing the model: its means must not mix them
        raise UserError(f"{csv_path} holds rows whose model is the {other[0]}, not the {selection}; "
                        f"pass another --tag (e.g. {tag}-valsel) for this selection")
    failures = []
    for normal_class in classes:
        for seed in seeds:
            if _is_done(read_rows(csv_path), tag, base.model, normal_class, seed, base.train.epochs):
                echo(f"skip {tag} {base.model} class {normal_class} seed {seed}: already in {csv_path}")
                continue
            config = dataclasses.replace(
                base,
                data=dataclasses.replace(base.data, normal_class=normal_class),
                train=dataclasses.replace(base.train, seed=seed),
            )
            data = make_one_class(splits, normal_class, config.data.val_fraction, config.data.val_novel,
                                  config.data.known_anomalies, config.data.known_anomaly_seed)
            cell = f"class{normal_class}_seed{seed}_e{base.train.epochs}" + ("_valsel" if selection != LAST_EPOCH else "")
            run_dir = Path(runs_dir) / f"{tag}_{base.model}" / cell
            cell_keys = {"dataset": tag, "model": base.model, "normal_class": normal_class, "seed": seed, "epochs": base.train.epochs}
            try:
                with run_folder_lock(run_dir):  # the cell's claim: another runner on this tag skips it
                    if _is_done(read_rows(csv_path), tag, base.model, normal_class, seed, base.train.epochs):
                        echo(f"skip {tag} {base.model} class {normal_class} seed {seed}: finished by another runner")
                        continue
                    echo(f"train {tag} {base.model} class {normal_class} seed {seed} -> {run_dir}")
                    row, metrics = _run_cell(config, data, run_dir, cell_keys, selection, command, device, progress, echo)
                    if not append_row(csv_path, row, splits.class_names, dataset=base.data.name, metrics=metrics):
                        echo(f"  class {normal_class} seed {seed} was already in {csv_path}; its row is kept")
            except RunFolderInUse:
                echo(f"skip {tag} {base.model} class {normal_class} seed {seed}: another runner is training it in {run_dir}")
            except CellFailed as error:
                failures.append(f"class {normal_class} seed {seed}")
                record_failure(csv_path, cell_keys, str(error), splits.class_names, dataset=base.data.name)
                echo(f"  FAILED class {normal_class} seed {seed}: {error}")
    if failures:
        raise UserError(f"{len(failures)} cell(s) failed ({', '.join(failures)}); the others are in {csv_path}; "
                        f"reasons in {failures_path(csv_path)}")
    return csv_path


