"""The training loop shared by every registered model."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import RunConfig, TrainConfig, run_config_from_dict, save_config
from ..data import OneClassData, load_one_class
from ..errors import UserError
from ..utils.io import atomic_write_text
from ..registry import create_algorithm, create_model, get_spec, known_models, resolve_model_config, saved_model_args
from .checkpoint import add_to_checkpoint, model_from_checkpoint, read_checkpoint, remove_stale_temporaries, restore_rng, save_checkpoint
from .device import prepare_device, resolve_device
from .evaluation import auc, compute_scores, validation_record
from .run_folder import check_replaceable, has_content, move_aside, restore_aside, run_folder_lock, write_marker
from .score_weights import choose_pseudo_anomaly_weights, choose_score_weights, pseudo_choice_images
from .thresholds import NORMAL_SCORES, reference_scores

CHECKPOINT_NAME = "checkpoints/last.pt"
SELECTED_CHECKPOINT_NAME = "checkpoints/best.pt"  # --select-epoch validation: the best validation epoch's model
VALIDATION_TRACE_NAME = "validation.jsonl"  # --select-epoch validation: one validation_record per epoch
EPOCH_SELECTIONS = ("last", "validation")
N_FIXED_IMAGES = 32
N_FIXED_TEST_IMAGES = 8  # one grid row: the first normal and the first novel test images


class TrainingDiverged(UserError):
    """A loss or a weight became NaN or infinite; the last finite epoch's checkpoint is kept."""


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def has_validation_split(data: OneClassData) -> bool:
    """Held-out normal training images and training images of other classes to score them against."""
    return len(data.validation) > 0 and len(data.validation_novel) > 0


def check_epoch_selection(config: RunConfig, data: OneClassData) -> None:
    """One-line UserError for an unknown --select-epoch, or validation selection without a validation split."""
    selection = config.train.select_epoch
    if selection not in EPOCH_SELECTIONS:
        raise UserError(f"--select-epoch {selection!r} is unknown; use one of {', '.join(EPOCH_SELECTIONS)}")
    if selection == "validation" and not has_validation_split(data):
        raise UserError("--select-epoch validation needs a validation split of training images: "
                        "set --val-fraction > 0 (e.g. 0.1) and --val-novel > 0")


def check_trainable(config: RunConfig, data: OneClassData) -> None:
    """One-line UserErrors for a class a run cannot train on: fewer than 2 normal training images, or
    an epoch selection its split cannot serve."""
    if len(data.train) < 2:
        raise UserError(f"class {config.data.normal_class} has {len(data.train)} training images; need at least 2")
    check_epoch_selection(config, data)


def selection_description(config: RunConfig) -> str:
    """How the reported model was chosen, in words (recorded with every protocol row)."""
    if config.train.select_epoch != "validation":
        return "last epoch"
    return (f"best validation epoch ({config.data.val_fraction:.0%} of the normal training images held out "
            f"vs {config.data.val_novel} training images of the other classes)")


def resolve_run_config(config: RunConfig, data: OneClassData) -> RunConfig:
    """Fill ``model_args`` with every resolved model hyper-parameter (saved with the run)."""
    model_config = resolve_model_config(config.model, config.data.name, config.model_args, data.in_channels, data.image_size)
    return dataclasses.replace(config, model_args=dataclasses.asdict(model_config))


# Train settings a resume may change: they decide how long and where, not what is trained.
RESUMABLE_CHANGES = ("epochs", "threads", "device")


def _same_run(saved: dict, wanted: dict, finished: bool = False) -> bool:
    """A resume may extend the epochs, move to other hardware or find the data at another path (e.g. a
    relative root made absolute for Ray workers); everything else must match the saved run.
    Keys a newer version added take their defaults in the saved config (they did not exist then).
    ``finished``: the saved run has every wanted epoch and the last one is wanted, so a run trained
    with ``--select-epoch validation`` serves as its last-epoch run too (no epoch is trained again)."""
    saved, wanted = run_config_from_dict(saved, where="checkpoint config").to_dict(), dict(wanted)
    saved_args = saved["model_args"]
    if "in_channels" in saved_args and "image_size" in saved_args:  # a resolved run config (every trainer run)
        # Model options added since the checkpoint was written take their defaults / dataset preset,
        # exactly as a fresh run of this version would; every option the run saved keeps its value.
        try:
            resolved = resolve_model_config(saved["model"], saved["data"]["name"], saved_model_args(saved["model"], saved_args),
                                            saved_args["in_channels"], saved_args["image_size"])
        except UserError:  # an option this version no longer has: not the same run
            return False
        saved["model_args"] = dataclasses.asdict(resolved)
    free = RESUMABLE_CHANGES + (("select_epoch",) if finished else ())
    for config in (saved, wanted):
        config["train"] = {k: v for k, v in config["train"].items() if k not in free}
        config["data"] = {k: v for k, v in config["data"].items() if k != "root"}  # the same images, found elsewhere
    return saved == wanted


def read_validation_trace(run_dir: str | Path, up_to_epoch: int | None = None) -> list[dict]:
    """The per-epoch validation records of a run (``--select-epoch validation``), oldest first;
    records after ``up_to_epoch`` (written by an interrupted run before its resume point) are dropped."""
    path = Path(run_dir) / VALIDATION_TRACE_NAME
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int) or "auc" not in record:
                raise UserError(f"{path}, line {number}, is not a validation record (the trainer writes one JSON "
                                "object an epoch); restore the file or train the run again")
            records.append(record)
    return [r for r in records if up_to_epoch is None or r["epoch"] <= up_to_epoch]


def _write_validation_trace(run_dir: Path, records: list[dict]) -> None:
    atomic_write_text(run_dir / VALIDATION_TRACE_NAME, "".join(json.dumps(r) + "\n" for r in records))


def _log_validation(writer, record: dict, epoch: int) -> None:
    writer.add_scalar("auc/validation", record["auc"], epoch)
    for name, value in record.get("component_aucs", {}).items():
        writer.add_scalar(f"auc_validation_components/{name}", value, epoch)
    for group, stats in (record.get("masks") or {}).items():
        for name, value in stats.items():
            writer.add_scalar(f"masks_validation_{group}/{name}", value, epoch)
    for name, value in (record.get("mask_aucs") or {}).items():
        writer.add_scalar(f"masks_validation_auc/{name}", value, epoch)


def _outlier_images(config: RunConfig, data: OneClassData) -> torch.Tensor | None:
    """The model's auxiliary real negatives: --outlier-exposure images (another dataset) or --known-anomalies
    (training images of K other classes of this one); checked before anything is written to the run folder."""
    in_channels = data.in_channels
    if config.data.outlier_exposure and config.data.known_anomalies:
        raise UserError("--outlier-exposure and --known-anomalies both give the model negatives; use one of them")
    if not config.data.outlier_exposure and not config.data.known_anomalies:
        return None
    option = "--outlier-exposure" if config.data.outlier_exposure else "--known-anomalies"
    model_config = resolve_model_config(config.model, config.data.name, config.model_args, in_channels, config.data.size)
    if not get_spec(config.model).algorithm_class.uses_outlier_images(model_config):
        takers = [f"{name} with {get_spec(name).algorithm_class.outlier_images_setting}" for name in known_models()
                  if get_spec(name).algorithm_class.outlier_images_setting]
        raise UserError(f"{option} needs a model that trains on auxiliary negatives ({'; '.join(takers)}), "
                        f"not {config.model} with these options")
    if config.data.known_anomalies:
        if len(data.known_anomaly_classes) != config.data.known_anomalies:
            raise ValueError("train() got data made without the config's --known-anomalies; build it with load_one_class")
        return data.known_anomalies
    from ..data.outliers import load_outlier_images

    return load_outlier_images(config.data.outlier_exposure, config.data, in_channels)


def _batches(n_items: int, batch_size: int):
    """Shuffled index batches from the global torch RNG; a trailing batch smaller than 2 is dropped (BatchNorm)."""
    order = torch.randperm(n_items)
    for start in range(0, n_items, batch_size):
        batch = order[start:start + batch_size]
        if len(batch) >= 2:
            yield batch


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, overwrite: bool = False,
          data: OneClassData | None = None, progress: bool = True, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train ``config.model`` on the normal class; checkpoint every epoch into ``run_dir``.

    ``on_epoch(report)`` runs after each epoch's checkpoint is written, with ``{"epoch", "message",
    "train_seconds"}`` and, with a validation split, ``"val_auc"`` (e.g. a cell's log, a Tune trial's
    report; it may stop training by raising).

    Returns ``{"run_dir", "checkpoint", "epochs", "train_seconds", "config", "selected_checkpoint",
    "selected_epoch", "val_auc"}``: the selected checkpoint is the last epoch's, or with
    ``train.select_epoch == "validation"`` the one of the epoch with the best AUC on the validation
    split (held-out normal training images vs other-class training images; never test images).
    """
    run_dir = Path(run_dir)
    device = resolve_device(config.train.device)
    prepare_device(device)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    data = data if data is not None else load_one_class(config.data)
    check_trainable(config, data)
    config = resolve_run_config(config, data)
    # a class given by name ('good') is saved as its index: the checkpoint rebuilds the same split
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, normal_class=data.normal_class))
    outlier_images = _outlier_images(config, data)

    last = checkpoint_path(run_dir)
    start_epoch, train_seconds, payload = 0, 0.0, None
    best = {"val_auc": float("-inf"), "epoch": None}  # --select-epoch validation
    trace: list[dict] = []  # --select-epoch validation: validation_record per epoch
    if resume and last.is_file():
        payload = read_checkpoint(last)
        finished = int(payload["epoch"]) == config.train.epochs and config.train.select_epoch == "last"
        if not _same_run(payload["config"], config.to_dict(), finished):
            raise UserError(f"{last} was trained with a different configuration; use another run folder "
                            "(train: --out; protocol: --tag or --runs)")
        start_epoch = int(payload["epoch"])
        train_seconds = float(payload["extra"].get("train_seconds", 0.0))
        if config.train.select_epoch == "validation" and (run_dir / SELECTED_CHECKPOINT_NAME).is_file():
            best = read_checkpoint(run_dir / SELECTED_CHECKPOINT_NAME)["extra"]["best"]  # the file is the truth
        trace = read_validation_trace(run_dir, up_to_epoch=start_epoch)
    elif run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder; choose a folder for the run")
    elif has_content(run_dir):
        if resume and not overwrite:
            raise UserError(f"--resume: no checkpoint at {last}; pass --overwrite to start {run_dir} afresh")
        if not overwrite:
            raise UserError(f"run folder {run_dir} already exists; pass --resume to continue it, --overwrite to replace it, or another --out")
        check_replaceable(run_dir)  # never a folder that is not a run folder (e.g. --out . by mistake)

    # Everything is built and checked before the run folder is touched.
    torch.manual_seed(config.train.seed)
    if payload is not None:
        _, model = model_from_checkpoint(payload, device)
        algorithm = create_algorithm(config.model, model, model.config, config.train)
        algorithm.load_state_dict(payload["algorithm"])
        restore_rng(payload)
    else:
        model_config = resolve_model_config(config.model, config.data.name, config.model_args, data.in_channels, data.image_size)
        model = create_model(config.model, model_config).to(device)
        algorithm = create_algorithm(config.model, model, model_config, config.train)

    fresh = not has_content(run_dir)
    check_score_weight_split(model, data)
    with run_folder_lock(run_dir):
        remove_stale_temporaries(last.parent)  # left by a save that was killed; no live writer holds the lock
        aside = move_aside(run_dir) if payload is None and has_content(run_dir) else None
        try:
            write_marker(run_dir)
            save_config(config, run_dir / "config.yaml")
            result = _train_epochs(config, run_dir, data, model, algorithm, device, outlier_images, start_epoch,
                                   train_seconds, best, trace, progress, aside, on_epoch)
        except BaseException as error:
            if aside is not None and aside.exists():  # the new run wrote no checkpoint: the old run comes back
                restore_aside(run_dir, aside)
            elif fresh and not last.is_file() and not isinstance(error, TrainingDiverged):
                # e.g. a full disk or Ctrl-C in the first epoch: nothing half-written stays behind
                # (a diverged run keeps its folder: its TensorBoard logs show how it diverged)
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return result


def check_score_weight_split(model, data: OneClassData) -> None:
    """One-line UserError for a model that chooses its score weights on a validation split it lacks."""
    if model.chooses_score_weights_on_validation and not has_validation_split(data):
        raise UserError("this model's options choose its score weights on a validation split of training images: "
                        "set --val-fraction > 0 (e.g. 0.1) and --val-novel > 0")


def _chosen_score_weights(model, validation_images, validation_is_novel, pseudo_normal_images) -> dict[str, float] | None:
    """The components' weights a model chooses after an epoch (None: its weights are fixed, or its
    score has no components yet): on the validation split, or on normal images vs pseudo-anomalies."""
    if not model.score_component_names:
        return None
    if model.chooses_score_weights_on_validation:
        return choose_score_weights(model, validation_images, validation_is_novel)[0]
    if model.score_weight_pseudo_anomalies:
        return choose_pseudo_anomaly_weights(model, pseudo_normal_images, model.score_weight_pseudo_anomalies)[0]
    return None


def _check_finite_logs(logs: dict, epoch: int, step: int, last: Path, train: TrainConfig) -> None:
    for name, value in logs.items():
        if not math.isfinite(float(value)):
            kept = f"{last} keeps epoch {epoch}" if epoch else "no checkpoint was written"
            raise TrainingDiverged(f"training diverged in epoch {epoch + 1}, step {step}: loss {name} = {float(value)}; "
                                   f"{kept}; lower --lr (now {train.lr:g}) or change the model options")


def _check_finite_model(model, epoch: int, last: Path) -> None:
    bad = [name for name, tensor in model.state_dict().items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        kept = f"{last} keeps epoch {epoch}" if epoch else "no checkpoint was written"
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: non-finite values in {', '.join(bad[:3])}"
                               f"{' and more' if len(bad) > 3 else ''}; {kept}; lower --lr or change the model options")


def _store_normal_scores(model, data: OneClassData, last: Path, selected: Path, device) -> None:
    """Keep the scores of normal images in each final checkpoint, for thresholds (``thresholds.py``)."""
    for path in dict.fromkeys([last, selected]):
        scorer = model if path == last else model_from_checkpoint(read_checkpoint(path), device)[1]
        scores, source = reference_scores(scorer, data)
        add_to_checkpoint(path, **{NORMAL_SCORES: {"source": source, "scores": scores}})


def _train_one_epoch(algorithm, train_images: torch.Tensor, epoch: int, train: TrainConfig, last: Path,
                     progress: bool) -> dict[str, float]:
    """One pass of ``algorithm.train_step`` over shuffled batches of the normal training images: the
    mean of each logged loss over the steps. A non-finite loss stops the run."""
    progress_key = algorithm.progress_loss  # read per epoch: a recipe may change phase
    progress_name = progress_key.rsplit("/", 1)[-1]
    sums: dict[str, float] = {}
    n_steps = 0
    bar = tqdm(list(_batches(len(train_images), train.batch_size)), desc=f"epoch {epoch + 1}/{train.epochs}",
               disable=not progress, leave=False, mininterval=1.0)
    for batch in bar:
        logs = algorithm.train_step(train_images[batch], epoch)
        _check_finite_logs(logs, epoch, n_steps + 1, last, train)
        for name, value in logs.items():
            sums[name] = sums.get(name, 0.0) + value
        n_steps += 1
        if n_steps % 10 == 0 and progress_key in logs:  # a phase may not log it
            bar.set_postfix({progress_name: f"{logs[progress_key]:.4f}"})
    return {name: total / max(n_steps, 1) for name, total in sums.items()}


def _record_validation(model, validation_images, validation_is_novel, epoch: int, weights_chosen: bool,
                       trace: list[dict], run_dir: Path, writer) -> dict:
    """Score the validation split after ``epoch`` (0-based), append the record to the run's
    validation trace (rewritten whole) and TensorBoard; returns the record."""
    record = {"epoch": epoch + 1, **validation_record(model, validation_images, validation_is_novel)}
    if weights_chosen:
        record["score_weights"] = model.score_component_weights
    trace.append(record)
    _write_validation_trace(run_dir, trace)
    _log_validation(writer, record, epoch + 1)
    return record


def _log_images(writer, algorithm, fixed_images, fixed_latent, fixed_test: dict, step: int) -> None:
    """The algorithm's image grids and histograms of the fixed inputs, for TensorBoard."""
    from torchvision.utils import make_grid

    for tag, images in algorithm.image_grids(fixed_images, fixed_latent, **fixed_test).items():
        writer.add_image(tag, make_grid(images.cpu(), nrow=8, normalize=True, value_range=(-1, 1)), step)
    for tag, values in algorithm.histograms(fixed_images).items():
        writer.add_histogram(tag, values.cpu(), step)


def _train_epochs(config: RunConfig, run_dir: Path, data: OneClassData, model, algorithm, device, outlier_images,
                  start_epoch: int, train_seconds: float, best: dict, trace: list[dict], progress: bool,
                  aside: Path | None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """The epoch loop of ``train``: the run folder is locked and holds this run's config."""
    from torch.utils.tensorboard import SummaryWriter

    last = checkpoint_path(run_dir)
    if outlier_images is not None:
        algorithm.set_outlier_images(outlier_images.to(device))
    # The normal training images live on the model's device (a few hundred MB at most for 32x32
    # classes); test images stay in host memory and are moved per scoring batch.
    train_images = data.train.to(device)

    # Fixed inputs and latents so image grids are comparable across epochs (pytorch/examples dcgan).
    fixed_generator = torch.Generator().manual_seed(1234)
    fixed_images = train_images[torch.randperm(len(data.train), generator=fixed_generator)[:N_FIXED_IMAGES]]
    fixed_latent = model.sample_latent(len(fixed_images), fixed_generator)  # None: the model decodes no codes
    validation_images, validation_is_novel = data.validation_set()
    pseudo_normal_images = pseudo_choice_images(data)[0] if model.score_weight_pseudo_anomalies else None
    selected = Path(run_dir) / SELECTED_CHECKPOINT_NAME if config.train.select_epoch == "validation" else last
    fixed_test = {group: data.test[torch.nonzero(data.test_is_novel == is_novel).flatten()[:N_FIXED_TEST_IMAGES]].to(device)
                  for group, is_novel in (("test_normal", 0), ("test_novel", 1))}

    with SummaryWriter(log_dir=str(run_dir)) as writer:
        for epoch in range(start_epoch, config.train.epochs):
            started = time.perf_counter()
            algorithm.start_epoch(epoch)
            losses = _train_one_epoch(algorithm, train_images, epoch, config.train, last, progress)
            algorithm.end_epoch(train_images)  # e.g. score statistics, from normal training images only
            _check_finite_model(model, epoch, last)
            every = config.train.eval_every
            monitored = bool(every) and ((epoch + 1) % every == 0 or epoch + 1 == config.train.epochs)
            # Chosen weights matter only where this epoch's model is scored or kept as the final model
            # (a last.pt of an unscored epoch keeps the weights of the last scored one until the run ends).
            scored = monitored or epoch + 1 == config.train.epochs or config.train.select_epoch == "validation"
            weights = _chosen_score_weights(model, validation_images, validation_is_novel, pseudo_normal_images) if scored else None
            if weights is not None:
                model.set_score_component_weights(weights)  # saved with the checkpoint (a buffer)
                for name, weight in weights.items():
                    writer.add_scalar(f"score_weights/{name}", weight, epoch + 1)
            train_seconds += time.perf_counter() - started
            for name, value in losses.items():
                writer.add_scalar(f"loss/{name}", value, epoch + 1)
            writer.add_scalar("time/train_seconds", train_seconds, epoch + 1)
            progress_key = algorithm.progress_loss
            message = f"epoch {epoch + 1}/{config.train.epochs}: {progress_key.rsplit('/', 1)[-1]} {losses.get(progress_key, 0.0):.4f}"
            if config.train.select_epoch == "validation":
                record = _record_validation(model, validation_images, validation_is_novel, epoch, weights is not None,
                                            trace, run_dir, writer)
                val_auc = record["auc"]
                message += f", validation AUC {val_auc:.4f}"
                if val_auc > best["val_auc"]:
                    best = {"val_auc": val_auc, "epoch": epoch + 1}
                    save_checkpoint(selected, config, model, None, epoch + 1, extra={"train_seconds": train_seconds, "best": best})
            if monitored:
                # Monitoring only: never used to choose a model (--select-epoch validation uses the validation split).
                # 0: never; train and protocol evaluate the final model afterwards anyway (AnoGAN's
                # scoring is a latent search per image, as long as several epochs of training).
                test_auc = auc(data.test_is_novel.numpy(), compute_scores(model, data.test))
                writer.add_scalar("auc/test", test_auc, epoch + 1)
                message += f", test AUC {test_auc:.4f}"
            _log_images(writer, algorithm, fixed_images, fixed_latent, fixed_test, epoch + 1)
            save_checkpoint(last, config, model, algorithm, epoch + 1, extra={"train_seconds": train_seconds})
            if aside is not None:  # the new run has its first checkpoint: the replaced run can go
                shutil.rmtree(aside)
                aside = None
            if progress:
                tqdm.write(message)
            if on_epoch is not None:
                report = {"epoch": epoch + 1, "message": message, "train_seconds": train_seconds}
                on_epoch(report if config.train.select_epoch != "validation" else {**report, "val_auc": val_auc})
    _store_normal_scores(model, data, last, selected, device)
    by_validation = config.train.select_epoch == "validation"
    return {"run_dir": str(run_dir), "checkpoint": str(last), "epochs": config.train.epochs,
            "train_seconds": train_seconds, "config": config, "selected_checkpoint": str(selected),
            "selected_epoch": best["epoch"] if by_validation else config.train.epochs,
            "val_auc": best["val_auc"] if by_validation else None}
