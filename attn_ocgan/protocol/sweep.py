"""``attn-ocgan sweep``: a hyper-parameter search on Ray Tune, chosen on validation AUC only.

A sweep file names a base run configuration and a search space over its keys::

    name: ocgan-latent                 # the table: RESULTS/sweeps/<name>.{csv,md}
    base:                              # as a --config file (model, data, train, model_args)
      model: ocgan
      data: {name: mnist5k, normal_class: 8}
      train: {epochs: 10}
    search:                            # model_args keys, or train.<key> / data.<key>
      latent_channels: {grid: [8, 16, 32]}
      train.lr: {loguniform: [1.0e-4, 1.0e-3]}
    samples: 2                         # random draws per grid point (default 1)
    scheduler: {asha: {grace_period: 2, reduction_factor: 2}}   # or none

Every trial trains with a validation split of training images (``val_fraction``, 0.1 unless the
base sets it) and reports its validation AUC after each epoch; ASHA stops the weak trials early.
The chosen trial is the one with the best validation AUC at any epoch, and only its model (that
epoch's checkpoint) is ever scored on test images.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
from pathlib import Path

from ..config import RunConfig, load_config_file, run_config_from_dict
from ..data import load_one_class
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.device import resolve_device
from ..engine.evaluation import evaluate_model
from ..engine.trainer import SELECTED_CHECKPOINT_NAME, train
from ..errors import UserError
from ..registry import create_model, resolve_model_config
from ..utils.environment import machine_description
from ..utils.io import atomic_write_text
from .distributed import Resources, import_ray, ray_session

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")
SWEEP_KEYS = ("name", "base", "search", "samples", "scheduler")
METRIC = "val_auc"


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    name: str
    base: RunConfig
    search: dict  # key -> {distribution: values}
    samples: int
    scheduler: dict | None  # {"grace_period", "reduction_factor"} for ASHA, None: every trial runs to the end


def _with_value(config: RunConfig, key: str, value) -> RunConfig:
    """``config`` with one searched key set: ``train.lr``, ``data.size`` or a model_args key."""
    section, _, field = key.rpartition(".")
    section = section or "model_args"
    if section not in ("train", "data", "model_args"):
        raise UserError(f"search key {key!r}: write a model argument (latent_channels) or train.<key> / data.<key>")
    return run_config_from_dict({section: {field: value}}, config, where=f"search key {key}")


def read_sweep(path: Path) -> SweepSpec:
    """The sweep file, checked whole (keys, distributions, a model built from the base with the first
    value of each searched key) so a bad file fails before Ray starts."""
    raw = load_config_file(path, sections="/".join(SWEEP_KEYS))
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; a sweep file has {', '.join(SWEEP_KEYS)}")
    if not isinstance(raw.get("search"), dict) or not raw["search"]:
        raise UserError(f"{path}: 'search' must map keys to distributions, e.g. latent_channels: {{grid: [8, 16]}}")
    if not isinstance(raw.get("base") or {}, dict):
        raise UserError(f"{path}: 'base' must be a run configuration (sections model/data/train/model_args)")
    base = run_config_from_dict(raw.get("base") or {}, RunConfig(), where=f"{path} base")
    if base.data.val_fraction == 0:
        base = run_config_from_dict({"data": {"val_fraction": 0.1}}, base)
    base = run_config_from_dict({"train": {"select_epoch": "validation"}}, base)
    if base.data.root:  # Tune runs each trial in its own folder: no relative data path
        base = run_config_from_dict({"data": {"root": str(Path(base.data.root).absolute())}}, base)
    probe = base
    for key, spec in raw["search"].items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise UserError(f"{path}: search key {key!r} needs one of {', '.join(DISTRIBUTIONS)}, e.g. {{grid: [8, 16]}}")
        (kind, values), = spec.items()
        if not isinstance(values, list) or not values or (kind not in ("grid", "choice") and len(values) != 2):
            raise UserError(f"{path}: search key {key!r}: {kind} takes " +
                            ("a list of values" if kind in ("grid", "choice") else "[low, high]"))
        if kind not in ("grid", "choice") and not (isinstance(values[0], (int, float)) and isinstance(values[1], (int, float))
                                                    and values[0] < values[1]):
            raise UserError(f"{path}: search key {key!r}: {kind} takes [low, high] with low < high, got {values}")
        probe = _with_value(probe, key, values[0])
    scheduler = raw.get("scheduler", {"asha": {}})
    if scheduler in (None, "none"):
        scheduler = None
    elif isinstance(scheduler, dict) and set(scheduler) == {"asha"}:
        scheduler = {"grace_period": 1, "reduction_factor": 2, **(scheduler["asha"] or {})}
    else:
        raise UserError(f"{path}: scheduler must be 'none' or {{asha: {{grace_period: 1, reduction_factor: 2}}}}")
    samples = raw.get("samples", 1)
    if not isinstance(samples, int) or samples < 1:
        raise UserError(f"{path}: samples must be a whole number >= 1, got {samples!r}")
    data = load_one_class(probe.data)  # the data and the model must build before any trial starts
    create_model(probe.model, resolve_model_config(probe.model, probe.data.name, probe.model_args, data.in_channels, data.image_size))
    return SweepSpec(str(raw.get("name") or Path(path).stem), base, dict(raw["search"]), samples, scheduler)


def _param_space(spec: SweepSpec) -> dict:
    from ray import tune

    make = {"grid": tune.grid_search, "choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v), "randint": lambda v: tune.randint(v[0], v[1] + 1)}
    space = {}
    for key, distribution in spec.search.items():
        (kind, values), = distribution.items()
        space[key] = make[kind](values)
    return space


def trial_config(base: RunConfig, params: dict) -> RunConfig:
    config = base
    for key, value in params.items():
        config = _with_value(config, key, value.item() if hasattr(value, "item") else value)
    return config


def _run_trial(params: dict, base: RunConfig, runs_dir: str, threads: int) -> None:
    """One Tune trial: trains in its own run folder (resumed if Tune restarts the trial), reporting
    the validation AUC after every epoch."""
    from ray import tune

    config = trial_config(base, params)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, threads=config.train.threads or threads))
    run_dir = Path(runs_dir) / tune.get_context().get_trial_id()
    train(config, run_dir, resume=True, overwrite=True, progress=False,
          on_epoch=lambda report: tune.report({METRIC: report[METRIC], "epoch": report["epoch"]}))


def run_sweep(spec: SweepSpec, resources: Resources, runs_dir: Path, results_dir: Path, command: str,
              echo=print) -> Path:
    """Run the sweep, then score the chosen trial on test images; returns the Markdown table's path."""
    if not resources.distributed:  # a sweep always runs on Ray: a local instance, one trial at a time
        resources = dataclasses.replace(resources, jobs=1)
    resources.check()
    resources.check_local_gpus()
    import_ray(local=resources.address is None)
    runs_dir = (Path(runs_dir) / spec.name).absolute()
    with ray_session(resources) as _:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        scheduler = None if spec.scheduler is None else ASHAScheduler(
            time_attr="epoch", max_t=spec.base.train.epochs, grace_period=spec.scheduler["grace_period"],
            reduction_factor=spec.scheduler["reduction_factor"])
        trainable = tune.with_parameters(_run_trial, base=spec.base, runs_dir=str(runs_dir / "trials"),
                                         threads=max(1, int(resources.cpus_per_cell)))
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": resources.cpus_per_cell, "gpu": resources.gpus_per_cell}),
            param_space=_param_space(spec),
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler, num_samples=spec.samples),
            run_config=tune.RunConfig(name=spec.name, storage_path=str(runs_dir / "tune"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=resources.max_retries)))
        grid = tuner.fit()
        trials = [_trial_row(result, spec, runs_dir / "trials") for result in grid]
    finished = [t for t in trials if t["best_val_auc"] is not None]
    if not finished:
        errors = "; ".join(str(t["error"]) for t in trials if t["error"]) or "no trial reported a validation AUC"
        raise UserError(f"sweep {spec.name}: no trial finished an epoch ({errors})")
    chosen = max(finished, key=lambda t: t["best_val_auc"])  # the first of equals: trials are in Tune's order
    chosen["test_auc"] = _test_auc(Path(chosen["run_dir"]), resolve_device(spec.base.train.device))
    echo(f"chosen trial {chosen['trial']}: validation AUC {chosen['best_val_auc']:.4f} at epoch {chosen['best_epoch']}, "
         f"test AUC {chosen['test_auc']:.4f}")
    return write_sweep_table(spec, trials, chosen, Path(results_dir) / "sweeps", command)


def _trial_row(result, spec: SweepSpec, trials_dir: Path) -> dict:
    frame = result.metrics_dataframe
    trial_id = (result.metrics or {}).get("trial_id")  # the run folder's name (_run_trial); absent if it never reported
    row = {"trial": trial_id or (Path(result.path).name if result.path else ""),
           "run_dir": str(trials_dir / trial_id) if trial_id else "",
           "params": {key: result.config[key] for key in spec.search}, "best_val_auc": None, "best_epoch": None, "epochs": 0,
           "error": None if result.error is None else str(result.error).strip().splitlines()[-1], "test_auc": None}
    if frame is not None and METRIC in frame and len(frame):
        best = frame[METRIC].idxmax()
        row.update(best_val_auc=float(frame[METRIC][best]), best_epoch=int(frame["epoch"][best]), epochs=int(frame["epoch"].max()))
    return row


def _test_auc(run_dir: Path, device) -> float:
    """The test AUC of the trial's best validation epoch (the only model of the sweep scored on test images)."""
    payload = read_checkpoint(run_dir / SELECTED_CHECKPOINT_NAME)
    config, model = model_from_checkpoint(payload, device)
    return float(evaluate_model(model, load_one_class(config.data), run_dir)["auc"])


def write_sweep_table(spec: SweepSpec, trials: list[dict], chosen: dict, folder: Path, command: str) -> Path:
    """``folder/<name>.csv`` (one row per trial) and ``<name>.md``."""
    keys = list(spec.search)
    columns = ["trial", *keys, "best_val_auc", "best_epoch", "epochs_trained", "chosen", "test_auc", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for trial in trials:
        writer.writerow({"trial": trial["trial"], **{k: trial["params"][k] for k in keys},
                         "best_val_auc": "" if trial["best_val_auc"] is None else f"{trial['best_val_auc']:.6f}",
                         "best_epoch": trial["best_epoch"] or "", "epochs_trained": trial["epochs"],
                         "chosen": "yes" if trial is chosen else "", "error": trial["error"] or "",
                         "test_auc": "" if trial["test_auc"] is None else f"{trial['test_auc']:.6f}"})
    csv_path = folder / f"{spec.name}.csv"
    atomic_write_text(csv_path, buffer.getvalue())

    def fmt(value):
        return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = [f"# Sweep {spec.name}: {spec.base.model} on {spec.base.data.name} class {spec.base.data.normal_class}", "",
             f"{len(trials)} trials, up to {spec.base.train.epochs} epochs, seed {spec.base.train.seed}; chosen on the "
             f"validation AUC ({spec.base.data.val_fraction:.0%} of the normal training images held out vs other-class "
             "training images). Only the chosen trial's model is scored on test images.", "",
             "| trial | " + " | ".join(keys) + " | best validation AUC | at epoch | epochs trained | test AUC |",
             "|---" * (len(keys) + 5) + "|"]
    for trial in sorted(trials, key=lambda t: -(t["best_val_auc"] or -1)):
        mark = "**" if trial is chosen else ""
        lines.append(f"| {mark}{trial['trial']}{mark} | " + " | ".join(fmt(trial["params"][k]) for k in keys) +
                     f" | {fmt(trial['best_val_auc'])} | {fmt(trial['best_epoch'])} | {trial['epochs']}"
                     f"{' (stopped early)' if trial['epochs'] < spec.base.train.epochs and not trial['error'] else ''}"
                     f" | {fmt(trial['test_auc'])} |")
    lines += ["", f"Search space: `{json.dumps(spec.search)}`; scheduler: "
              f"{'none' if spec.scheduler is None else 'ASHA ' + json.dumps(spec.scheduler)}.", "",
              "Produced by:", "", f"    {command}", "",
              f"Machine: {machine_description(resolve_device(spec.base.train.device))}; date: {datetime.date.today().isoformat()}", ""]
    md_path = csv_path.with_suffix(".md")
    atomic_write_text(md_path, "\n".join(lines))
    return md_path
