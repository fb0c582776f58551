"""``attn-ocgan`` command line: parses flags, builds a config, calls the package. No logic here."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import yaml

from typing import Any, Mapping

from .config import RunConfig, load_config_file, run_config_from_dict
from .engine.device import DEVICE_HELP
from .errors import UserError


def _class_option(value: str | None) -> int | str | None:
    """--normal-class: an index ('3') or a class name ('good')."""
    return int(value) if value is not None and value.strip().isdigit() else value


def _parse_model_args(pairs) -> dict:
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--model-arg {pair!r} must look like KEY=VALUE, e.g. --model-arg latent_channels=32")
        key, text = pair.split("=", 1)
        values[key.strip()] = yaml.safe_load(text)
    return values


# Which config field each command-line option sets (options not listed here are not config).
DATA_OPTIONS = {"dataset": "name", "normal_class": "normal_class", "data_root": "root", "folder": "folder", "size": "size",
                "download": "download", "outlier_exposure": "outlier_exposure", "variant": "variant",
                "val_fraction": "val_fraction", "val_novel": "val_novel", "known_anomalies": "known_anomalies",
                "known_anomaly_seed": "known_anomaly_seed"}
TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "seed", "threads", "eval_every", "device", "select_epoch")
ATTENTION_OPTIONS = ("temperature", "mask_warmup_epochs", "reset_masked_gan_at", "pretrain_attention_epochs")


def build_config(options: Mapping[str, Any]) -> RunConfig:
    """A run configuration from a command's parsed options (click's ``params``; absent or None = unset).

    Defaults < ``--config`` file < flags (flags left unset do not override). The attention flags are
    ``model_args`` keys; ``--model-arg KEY=VALUE`` wins over them. ``--select-epoch validation`` without
    a hold-out holds out 10 % of the normal training images."""
    given = {key: value for key, value in options.items() if value is not None and value is not False}
    config = RunConfig()
    if given.get("config_file"):
        config = run_config_from_dict(load_config_file(given["config_file"]), config, where=str(given["config_file"]))
    flags = {
        "data": {field: given[option] for option, field in DATA_OPTIONS.items() if option in given},
        "train": {option: given[option] for option in TRAIN_OPTIONS if option in given},
        "model_args": {**{option: given[option] for option in ATTENTION_OPTIONS if option in given},
                       **_parse_model_args(given.get("model_args", ()))},
    }
    if "model" in given:
        flags["model"] = given["model"]
    config = run_config_from_dict(flags, config, where="command-line flags")
    if config.train.select_epoch == "validation" and config.data.val_fraction == 0 and "val_fraction" not in given:
        config = run_config_from_dict({"data": {"val_fraction": 0.1}}, config)
    return config


class SectionedOption(click.Option):
    """An option listed under its own heading in ``--help`` (e.g. the attention model's options)."""

    def __init__(self, *args, section: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.section = section


class SectionedCommand(click.Command):
    """``--help`` lists the common options, then each ``SectionedOption`` section under its heading."""

    def format_options(self, ctx, formatter):
        sections: dict[str, list] = {}
        for parameter in self.get_params(ctx):
            record = parameter.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(parameter, "section", "Options"), []).append(record)
        for heading, records in sections.items():
            with formatter.section(heading):
                formatter.write_dl(records)


def _options(function, options):
    for option in reversed(options):
        function = option(function)
    return function


def device_option(default="auto"):
    return click.option("--device", default=default, show_default=default is not None,
                        help=f"Where the model runs: {DEVICE_HELP}." + ("" if default else " Default auto."))


def _set_threads(context: click.Context, parameter: click.Parameter, value: int | None) -> None:
    if value is not None:
        import torch

        torch.set_num_threads(value)
    context.meta[parameter.name] = value  # not a function argument; _command_line still records it


def threads_option(default: int | None = None):
    """``--threads``: torch CPU threads, set while the options are parsed (the command does not see it)."""
    return click.option("--threads", type=click.IntRange(min=1), default=default, show_default=default is not None,
                        expose_value=False, callback=_set_threads,
                        help="torch CPU threads" + ("." if default else " (default: torch's choice)."))


def data_override_options(function):
    """Options of the commands that read a checkpoint's dataset, with overrides."""
    return _options(function, [
        click.option("--dataset", default=None, help="Dataset of the images (default: the first checkpoint's)."),
        click.option("--data-root", default=None, help="Data root (default: the first checkpoint's)."),
        click.option("--folder", default=None, help="--dataset folder: the image tree below the data root."),
        click.option("--normal-class", type=int, default=None, help="Normal class (default: the first checkpoint's)."),
    ])


def rescoring_options(checkpoints_required: bool):
    """Options and the CHECKPOINTS arguments of the reports that score checkpoints again (not required
    where a metrics log may replace them)."""
    return lambda function: _options(function, [
        click.option("--data-root", default=None, help="Override the data root stored in the checkpoints."),
        threads_option(default=2),
        click.option("--device", default="cpu", show_default=True, help=f"Where checkpoints are scored: {DEVICE_HELP}."),
        click.argument("checkpoints", nargs=-1, required=checkpoints_required, type=click.Path(dir_okay=False)),
    ])


ATTENTION_SECTION = "Attention OCGAN options (--model attn-ocgan)"


def common_options(function):
    """The options that build a run configuration (train and protocol)."""
    attention = dict(cls=SectionedOption, section=ATTENTION_SECTION)
    return _options(function, [
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     help="YAML file with sections model/data/train/model_args (e.g. configs/ablation/*.yaml)."),
        click.option("--model", default=None, help="Registered model: attn-ocgan (default), ocgan, ganomaly, skip-ganomaly, anogan, fanogan, rotnet."),
        click.option("--dataset", default=None,
                     help="mnist5k (embedded, default), mnist, fashion-mnist, cifar10, folder, coco32."),
        click.option("--data-root", default=None,
                     help="Folder holding the datasets, each in its own sub-folder (default: $ATTN_OCGAN_DATA, else datasets/)."),
        click.option("--folder", default=None, help="--dataset folder: the image tree ROOT/<train,test>/<class>/ below the "
                                                    "data root, or an absolute path (default: the data root itself)."),
        click.option("--variant", type=click.Choice(["unmasked", "masked"]), default=None,
                     help="coco32 only: unmasked crops (default) or masked crops (background 0)."),
        click.option("--epochs", type=int, default=None),
        click.option("--batch-size", type=int, default=None),
        click.option("--lr", type=float, default=None),
        click.option("--download", is_flag=True, default=False, help="Let torchvision download the dataset (online users)."),
        click.option("--size", type=int, default=None, help="Image side in pixels (default 32)."),
        click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)."),
        device_option(default=None),
        click.option("--eval-every", type=int, default=None, help="Log test AUC to TensorBoard every N epochs and at the last (monitoring only; 0: never)."),
        click.option("--select-epoch", type=click.Choice(["last", "validation"]), default=None,
                     help="Which epoch's model is the result: last (default), or the best AUC on a validation split of "
                          "training images (held-out normal images vs other-class training images; never test images)."),
        click.option("--val-fraction", type=float, default=None,
                     help="Share of the normal training images held out of training (default 0; 0.1 with --select-epoch validation)."),
        click.option("--val-novel", type=int, default=None,
                     help="Training images of the other classes in the validation split (default 2000)."),
        click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
                     help="Model hyper-parameter, repeatable (e.g. --model-arg latent_channels=32)."),
        click.option("--temperature", type=float, default=None, help="Mask = sigmoid(logits / T) (default 0.5). A model_args key.", **attention),
        click.option("--mask-warmup-epochs", type=int, default=None,
                     help="Epochs the attention generator and guide learn before the masked GAN starts. A model_args key.", **attention),
        click.option("--reset-masked-gan-at", type=int, default=None,
                     help="Re-initialise the masked GAN at the start of this epoch (1-based; 0: never). A model_args key.", **attention),
        click.option("--pretrain-attention-epochs", type=int, default=None,
                     help="Epochs at the start where only the attention generator and guide learn. A model_args key.", **attention),
        click.option("--outlier-exposure", default=None, metavar="NAME[:ROOT]",
                     help="Negatives for the guiding classifier from another dataset (default: none, strict one-class); "
                          "needs the pseudo-anomaly guide: --config configs/attention/first-recipe.yaml.",
                     **attention),
        click.option("--known-anomalies", type=int, default=None, metavar="K",
                     help="The original authors' setting: training images of K other classes of this dataset are the "
                          "guide's negatives; the test AUC is also reported on seen and unseen classes apart (default 0); needs the "
                          "pseudo-anomaly guide: --config configs/attention/first-recipe.yaml.",
                     **attention),
        click.option("--known-anomaly-seed", type=int, default=None,
                     help="Which K classes --known-anomalies draws (with the normal class; default 0).", **attention),
    ])


RAY_SECTION = "Ray options (docs/distributed.md; pip install 'attn-ocgan[distributed]')"


def ray_options(function):
    """Where the cells of a grid run: in this process (default), a local Ray instance or a Ray cluster."""
    ray = dict(cls=SectionedOption, section=RAY_SECTION)
    return _options(function, [
        click.option("--jobs", type=int, default=None, help="Run the cells as Ray tasks on a local Ray instance started "
                                                            "for this run, this many at a time (default: in this process).", **ray),
        click.option("--ray-address", default=None, metavar="ADDR|auto",
                     help="Run the cells on a running Ray cluster ('ray start --head'); auto: the one on this machine.", **ray),
        click.option("--cpus-per-cell", type=float, default=1.0, show_default=True,
                     help="CPUs Ray reserves for each cell (its torch threads unless --threads is given).", **ray),
        click.option("--gpus-per-cell", type=float, default=0.0, show_default=True,
                     help="GPUs for each cell; fractions share one GPU (0.25: four 32x32 cells per GPU).", **ray),
        click.option("--max-retries", type=int, default=2, show_default=True,
                     help="Retries of a cell whose worker or node died (it resumes from its last checkpoint).", **ray),
    ])


def _command_line(context: click.Context | None = None, keep: tuple[str, ...] | None = None) -> str:
    """The re-runnable command recorded under a table's "Produced by": ``attn-ocgan <command>``, then
    the options given on the command line (only those named in ``keep``, if given) in the order they
    are declared, then the arguments. ``context``: the running command's (default: the current one)."""
    context = context or click.get_current_context()
    names, root = [], context
    while root.parent is not None:
        names.insert(0, root.info_name)
        root = root.parent
    options, arguments = [], []
    for parameter in context.command.params:
        value = context.params.get(parameter.name, context.meta.get(parameter.name))
        if context.get_parameter_source(parameter.name) != click.core.ParameterSource.COMMANDLINE or (
                keep is not None and parameter.name not in keep):
            continue
        if isinstance(parameter, click.Argument):
            arguments += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        elif getattr(parameter, "is_flag", False):
            options += [parameter.opts[0]] if value else []
        else:
            for single in value if parameter.multiple else [value]:
                options += [parameter.opts[0], str(single)]
    return shlex.join(["attn-ocgan", *names, *options, *arguments])



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="attn-ocgan")
def cli():
    """One-class novelty detection: OCGAN, attention OCGAN and GAN baselines."""


def _warn_if_unfinished(payload: dict, checkpoint) -> None:
    from .engine.checkpoint import unfinished_training

    progress = unfinished_training(payload)
    if progress:
        click.echo(f"warning: {checkpoint} is from {progress}: its training has not finished", err=True)


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint written by 'attn-ocgan train'.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for scores.csv (and maps/ with --maps).")
@click.option("--threshold", default="auto", show_default=True,
              help="auto (the 0.99 quantile of the normal scores stored with the model), a quantile such as q0.995, or a number.")
@click.option("--maps", is_flag=True, help="Also write one PNG per image: input, reconstruction, residual heat map, attention mask.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Images scored at once.")
@device_option()
@threads_option()
@click.argument("inputs", nargs=-1, required=True)
def predict(checkpoint, out, threshold, maps, batch_size, device, inputs):
    """Score new images (files, folders, globs): OUT/scores.csv with each image's score, decision and
    score components; unreadable files are listed with the reason."""
    from .engine.checkpoint import model_from_checkpoint, read_checkpoint
    from .engine.device import resolve_device
    from .engine.predict import collect_inputs, prepare_images, save_maps, score_images, write_scores_csv
    from .engine.thresholds import parse_threshold, resolve_threshold

    spec = parse_threshold(threshold)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder for scores.csv")
    paths = collect_inputs(inputs)
    payload = read_checkpoint(checkpoint)
    value, chosen = resolve_threshold(spec, payload, checkpoint)
    _warn_if_unfinished(payload, checkpoint)
    config, model = model_from_checkpoint(payload, resolve_device(device))
    prepared = prepare_images(paths, model.config.in_channels, model.config.image_size, config.data.name)
    if not prepared.paths:
        first, reason = next(iter(prepared.problems.items()))
        raise UserError(f"none of the {len(prepared.problems)} input(s) could be read as an image ({first}: {reason}); "
                        "pass image files (PNG, JPEG, ...)")
    if prepared.upscaled:
        click.echo(f"warning: {prepared.upscaled} image(s) smaller than {model.config.image_size} x "
                   f"{model.config.image_size} were upscaled", err=True)
    columns = score_images(model, prepared.images, batch_size)
    write_scores_csv(out / "scores.csv", prepared, columns, value)
    flagged = int((columns["score"] > value).sum())
    click.echo(f"scored {len(prepared.paths)} image(s), {flagged} anomalous at threshold {chosen}"
               + (f"; {len(prepared.problems)} unreadable (listed in scores.csv)" if prepared.problems else ""))
    click.echo(f"wrote {out / 'scores.csv'}")
    if maps:
        written = save_maps(out / "maps", model, prepared, columns, value)
        click.echo(f"wrote {len(written)} maps to {out / 'maps'}")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint written by 'attn-ocgan train'.")
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), default="torchscript", show_default=True,
              help="torchscript (torch.jit.load) or onnx (onnxruntime; pip install 'attn-ocgan[export]').")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="File to write (default: beside the checkpoint, scorer.pt or scorer.onnx); a .json description goes beside it.")
@device_option()
@threads_option()
def export(checkpoint, fmt, out, device):
    """A self-contained scorer: uint8 images of the trained size in, scores and residual maps out
    (preprocessing and score normalisation inside)."""
    from .engine.checkpoint import read_checkpoint
    from .engine.export import export_model

    payload = read_checkpoint(checkpoint)
    _warn_if_unfinished(payload, checkpoint)
    out = Path(out) if out else Path(checkpoint).resolve().parent / ("scorer.pt" if fmt == "torchscript" else "scorer.onnx")
    written = export_model(payload, out, fmt, device)
    click.echo(f"wrote {written} and {written}.json")


@cli.command(cls=SectionedCommand)
@common_options
@click.option("--normal-class", default=None, callback=lambda context, option, value: _class_option(value),
              help="The class trained on: an index or a class folder name such as good (default 0).")
@click.option("--seed", type=int, default=None)
@click.option("--out", default=None, help="Run folder (default runs/<model>-<dataset>-class<K>-seed<S>).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
def train(out, resume, overwrite, **options):
    """Train a model on the images of one normal class; checkpoints and TensorBoard logs go to --out."""
    from .data import load_one_class
    from .engine.checkpoint import model_from_checkpoint, read_checkpoint
    from .engine.device import resolve_device
    from .engine.evaluation import evaluate_model
    from .engine.thresholds import parse_threshold, resolve_threshold
    from .engine.trainer import train as run_training

    config = build_config(options)
    out = Path(out or f"runs/{config.model}-{config.data.name}-class{config.data.normal_class}-seed{config.train.seed}")
    data = load_one_class(config.data)
    if resume and (not out.exists() or (out.is_dir() and not any(out.iterdir()))):  # else the trainer resumes or refuses
        click.echo(f"note: nothing to resume in {out}; starting a new run there", err=True)
    result = run_training(config, out, resume=resume, overwrite=overwrite, data=data)
    payload = read_checkpoint(result["selected_checkpoint"])
    _, trained = model_from_checkpoint(payload, resolve_device(config.train.device))
    metrics = evaluate_model(trained, data, out, title=f"{config.data.name} {config.model} class {config.data.normal_class}",
                             threshold=resolve_threshold(parse_threshold("auto"), payload))
    chosen = "" if result["val_auc"] is None else f"; model of epoch {result['selected_epoch']}, validation AUC {result['val_auc']:.4f}"
    click.echo(f"test AUC {metrics['auc']:.4f} after {result['epochs']} epochs ({result['train_seconds']:.0f} s training{chosen})")
    click.echo(f"checkpoint: {result['selected_checkpoint']}")
    click.echo(f"TensorBoard logs: {out}  (tensorboard --logdir {out.parent})")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint written by 'attn-ocgan train'.")
@click.option("--data-root", default=None, help="Override the data root stored in the checkpoint.")
@click.option("--out", default=None, help="Folder for metrics.json, roc.png, score_histogram.png (default: the run folder).")
@click.option("--threshold", default="auto", show_default=True,
              help="Decision threshold for precision/recall/F1: auto (the 0.99 quantile of the stored normal scores), "
                   "a quantile such as q0.995, or a number.")
@device_option()
@threads_option()
def evaluate(checkpoint, data_root, out, threshold, device):
    """Score the test split with a checkpoint: AUC, precision/recall/F1 at a threshold, metrics.json, ROC curve and score histogram."""
    from .data import load_one_class
    from .engine.checkpoint import model_from_checkpoint, read_checkpoint
    from .engine.device import resolve_device
    from .engine.evaluation import evaluate_model
    from .engine.thresholds import normal_scores, parse_threshold, resolve_threshold

    spec = parse_threshold(threshold)
    payload = read_checkpoint(checkpoint)
    _warn_if_unfinished(payload, checkpoint)
    config, model = model_from_checkpoint(payload, resolve_device(device))
    decided = None
    if spec.needs_normal_scores and normal_scores(payload) is None:
        click.echo(f"note: {checkpoint} stores no scores of normal images; no precision/recall (pass --threshold NUMBER)")
    else:
        decided = resolve_threshold(spec, payload, checkpoint)
    data = load_one_class(config.data, data_root)
    out = Path(out) if out else Path(checkpoint).resolve().parent.parent
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder for the evaluation's files")
    metrics = evaluate_model(model, data, out, title=f"{config.data.name} {config.model} class {config.data.normal_class}",
                             threshold=decided)
    click.echo(f"AUC {metrics['auc']:.4f} ({config.data.name}, normal class {config.data.normal_class}, {metrics['n_test']} test images)")
    if "decision" in metrics:
        decision = metrics["decision"]
        click.echo(f"at threshold {decision['chosen']}: precision {decision['precision']:.3f}, recall {decision['recall']:.3f}, "
                   f"F1 {decision['f1']:.3f}, {decision['flagged']:.1%} of test images flagged")
    written = [out / name for name in ("metrics.json", "roc.png", "score_histogram.png", *metrics["figures"])]
    click.echo("wrote " + ", ".join(str(path) for path in written))


@cli.command(cls=SectionedCommand)
@common_options
@click.option("--classes", default="0-9", show_default=True, help="Normal classes, e.g. 0-9 or 0,3,5.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0,1,2.")
@click.option("--results", "results_dir", default="results", show_default=True,
              help="Results folder: tables go to RESULTS/<dataset>/<tag>_<model>.{csv,md,metrics.jsonl}.")
@click.option("--runs", "runs_dir", default="runs/protocol", show_default=True, help="Folder for per-cell run folders.")
@click.option("--tag", default=None, help="Name of the table (default: the dataset, or the image tree's folder name).")
@click.option("--status", "show_status", is_flag=True,
              help="Only show where the grid stands (each cell done, failed, running, part-trained or to do, and "
                   "the training time left); trains and writes nothing.")
@ray_options
def protocol(classes, seeds, results_dir, runs_dir, tag, show_status, jobs, ray_address, cpus_per_cell, gpus_per_cell,
             max_retries, **options):
    """Protocol 2 over classes x seeds: resumable; appends to RESULTS/<dataset>/<tag>_<model>.csv and writes the .md table.
    With --jobs or --ray-address every (class, seed) cell is a Ray task (docs/distributed.md)."""
    from .protocol.distributed import Resources, run_protocol_on_ray
    from .protocol.runner import parse_int_list, run_protocol

    resources = Resources(jobs, ray_address, cpus_per_cell, gpus_per_cell, max_retries)
    resources.check()
    config = build_config(options)
    grid = (parse_int_list(classes, "classes"), parse_int_list(seeds, "seeds"), Path(results_dir), Path(runs_dir), _command_line())
    if show_status:
        from .protocol.status import protocol_status

        for line in protocol_status(config, *grid[:4], tag=tag)[1]:
            click.echo(line)
        return
    if resources.distributed:
        csv_path = run_protocol_on_ray(config, *grid, resources, tag=tag, echo=click.echo)
    else:
        csv_path = run_protocol(config, *grid, tag=tag, echo=click.echo)
    click.echo(f"results: {csv_path} and {csv_path.with_suffix('.md')}")


@cli.command()
@click.option("--config", "sweep_file", required=True, type=click.Path(dir_okay=False),
              help="Sweep file: name, base run configuration, search space, samples, scheduler (configs/sweeps/).")
@click.option("--results", "results_dir", default="results", show_default=True,
              help="The sweep table goes to RESULTS/sweeps/<name>.{csv,md}.")
@click.option("--runs", "runs_dir", default="runs/sweep", show_default=True, help="Folder for the trials' run folders.")
@ray_options
def sweep(sweep_file, results_dir, runs_dir, jobs, ray_address, cpus_per_cell, gpus_per_cell, max_retries):
    """Hyper-parameter search on Ray Tune (ASHA), chosen on the validation AUC of training images only;
    the chosen trial alone is scored on test images. Without --jobs/--ray-address: a local Ray, one trial at a time."""
    from .protocol.distributed import Resources
    from .protocol.sweep import read_sweep, run_sweep

    resources = Resources(jobs, ray_address, cpus_per_cell, gpus_per_cell, max_retries)
    spec = read_sweep(Path(sweep_file))
    table = run_sweep(spec, resources, Path(runs_dir), Path(results_dir), _command_line(), echo=click.echo)
    click.echo(f"sweep table: {table} and {table.with_suffix('.csv')}")


@cli.command()
@click.option("--data-root", default=None,
              help="Data root holding coco32/ (built by attn-ocgan build-coco32; default: $ATTN_OCGAN_DATA, else datasets/).")
@click.option("--variants", default="masked,unmasked", show_default=True, help="Which crops to train on, in order.")
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True, help="SGD learning rate (momentum 0.9, constant).")
@click.option("--batch-norm", is_flag=True, help="Use timm's vgg11_bn instead of vgg11.")
@click.option("--no-augment", is_flag=True, help="Train without random crops and flips.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0 or 0,1,2 (same seeds for every variant).")
@click.option("--results", "results_prefix", default="results/coco32/coco32_masked_vs_unmasked", show_default=True,
              help="Output prefix: writes PREFIX.csv (per epoch), PREFIX.png and PREFIX.md.")
@click.option("--logdir", default="runs/classify", show_default=True, help="TensorBoard folder (one run per variant/seed).")
@device_option()
@threads_option()
def classify(data_root, variants, epochs, batch_size, lr, batch_norm, no_augment, seeds, results_prefix, logdir, device):
    """Masked vs unmasked COCO32: VGG11 from scratch on each variant, same seed and schedule."""
    from .studies.classification import ClassifierSchedule, run_masked_vs_unmasked
    from .protocol.runner import parse_int_list

    schedule = ClassifierSchedule(epochs=epochs, batch_size=batch_size, lr=lr, augment=not no_augment,
                                  batch_norm=batch_norm)
    chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
    unknown = [v for v in chosen if v not in ("masked", "unmasked")]
    if unknown or not chosen:
        raise UserError(f"--variants {variants!r} must list masked and/or unmasked")
    summary = run_masked_vs_unmasked(data_root, Path(results_prefix), Path(logdir), schedule,
                                     parse_int_list(seeds, "seeds"), _command_line(), chosen, echo=click.echo, device=device)
    for variant, row in summary.items():
        click.echo(f"{variant}: final test accuracy {row['final_accuracy_mean']:.4f}, 80 % at epoch(s) {row['epochs_to_80']}")
    click.echo(f"results: {results_prefix}.csv, .png, .md; TensorBoard: {logdir}")


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A checkpoint to explain; repeat to compare (e.g. vanilla and attention).")
@data_override_options
@click.option("--variant", type=click.Choice(["unmasked", "masked"]), default=None, help="coco32 only.")
@click.option("--n", "n_images", type=int, default=16, show_default=True, help="Normal and novel test images each.")
@click.option("--head", default=None,
              help="Single-logit network whose logit Grad-CAM explains: visual_discriminator (OCGAN's default), classifier, "
                   "guide (attention OCGAN), discriminator (GANomaly, AnoGAN). Default: each model's first.")
@click.option("--evidence", type=click.Choice(["normal", "novel"]), default="normal", show_default=True,
              help="Explain the logit (evidence for 'normal') or its negation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which test images are drawn.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG figure to write.")
@click.option("--logdir", default=None, help="Also write the grids to TensorBoard here.")
@device_option()
@threads_option()
def gradcam(checkpoints, dataset, data_root, folder, normal_class, variant, n_images, head, evidence, seed, out, logdir, device):
    """Grad-CAM of each checkpoint (and attention masks) on normal and novel test images."""
    from .studies.gradcam import run_gradcam_comparison

    path = run_gradcam_comparison(checkpoints, Path(out), n_images, head, evidence, dataset, data_root, normal_class,
                                  variant, Path(logdir) if logdir else None, seed, device=device, folder=folder)
    click.echo(f"wrote {path}" + (f"; TensorBoard: {logdir}" if logdir else ""))


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A trained checkpoint of one normal class; repeat to compare models (ocgan, attn-ocgan, ganomaly, anogan).")
@data_override_options
@click.option("--n", "n_images", type=int, default=8, show_default=True, help="Normal and novel test images in the residual figure.")
@click.option("--limit", type=int, default=2000, show_default=True,
              help="Score at most this many images per group (a seeded choice; AnoGAN's latent search is slow); 0: all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which images are drawn.")
@click.option("--out", "out_prefix", required=True, help="Prefix: writes PREFIX_scores.png and PREFIX_residuals.png.")
@device_option()
@threads_option()
def figures(checkpoints, dataset, data_root, folder, normal_class, n_images, limit, seed, out_prefix, device):
    """Score distributions and residual images of several models of one normal class."""
    from .studies.model_figures import run_model_figures

    paths = run_model_figures(checkpoints, Path(out_prefix), n_images, limit or None, seed, dataset, data_root, normal_class,
                              device=device, folder=folder)
    click.echo("wrote " + " and ".join(str(path) for path in paths.values()))


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A checkpoint whose maps are measured; repeat to compare.")
@click.option("--data-root", default=None, help="Data root holding coco32/ (default: $ATTN_OCGAN_DATA, else datasets/).")
@click.option("--variant", type=click.Choice(["unmasked", "masked"]), default="unmasked", show_default=True,
              help="Which crops the models look at.")
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True)
@click.option("--head", default=None, help="Single-logit network for Grad-CAM (default: each model's first; see gradcam --help).")
@click.option("--out", default="results/coco32/coco32_localisation.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV to write (a Markdown table goes beside it).")
@device_option()
@threads_option()
def localize(checkpoints, data_root, variant, split, head, out, device):
    """Pointing game and IoU of attention and Grad-CAM maps against COCO32 object masks."""
    from .studies.localisation import run_localisation

    rows = run_localisation(checkpoints, data_root, Path(out), variant, split, head, _command_line(), device=device)
    for row in rows:
        click.echo(f"{row['model']:<36} {row['map']:<32} pointing {row['pointing']:.3f}  "
                   f"IoU@0.5 {row['iou_at_0.5']:.3f}  IoU@mean {row['iou_at_mean']:.3f}")
    click.echo(f"wrote {out} and {Path(out).with_suffix('.md')}")


@cli.command()
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding the protocol tables <dataset>/<tag>_<model>.csv.")
@click.option("--datasets", default="mnist,cifar10", show_default=True, help="Dataset families, comma-separated.")
@click.option("--out", default="results/comparison.md", show_default=True, type=click.Path(dir_okay=False),
              help="Markdown table to write; a .png with per-class AUCs is written beside it.")
@click.option("--tags", default="*", show_default=True,
              help="Only tables whose tag matches this glob (e.g. 'cifar10-jpeg*' for the ablation tables).")
@click.option("--exclude-tags", default="*-abl-*,*-proxy-*", show_default=True,
              help="Leave out tables whose tag matches one of these comma-separated globs ('' keeps all; the default "
                   "drops ablation settings and proxy-sweep cells).")
@click.option("--models", default=None, help="Only these models, comma-separated (default: every model found).")
@click.option("--title", default="Comparison: every model on protocol 2", show_default=True, help="Heading of the table.")
def compare(results_dir, datasets, out, tags, exclude_tags, models, title):
    """One table of every model's protocol results per dataset, beside the published rows."""
    from .protocol.comparison import MODEL_ORDER, write_comparison
    from .reference import CLASS_NAMES
    from .registry import known_models

    chosen = tuple(d.strip() for d in datasets.split(",") if d.strip())
    unknown = [d for d in chosen if d not in CLASS_NAMES]
    if unknown or not chosen:
        raise UserError(f"--datasets {datasets!r}: choose from {', '.join(CLASS_NAMES)}")
    if not Path(results_dir).is_dir():
        raise UserError(f"results folder {results_dir} does not exist; run 'attn-ocgan protocol' first or pass --results")
    out = Path(out)
    chosen_models = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    unknown_models = [m for m in chosen_models or () if m not in MODEL_ORDER and m not in known_models()]
    if unknown_models:
        raise UserError(f"--models: unknown model(s) {', '.join(unknown_models)}; known: {', '.join(MODEL_ORDER)}")
    write_comparison(Path(results_dir), out, chosen, figure=out.with_suffix(".png"), tags=tags, models=chosen_models,
                     title=title, exclude=exclude_tags)
    click.echo(f"wrote {out} and {out.with_suffix('.png')}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@cli.group()
def report():
    """Tables from finished runs: score components and their means, complexity calibration, the ablation, pixel floors, the proxy sweep."""


@report.command("score-components")
@click.option("--metrics", "metrics_log", default=None, type=click.Path(dir_okay=False),
              help="A protocol runner's <tag>_attn-ocgan.metrics.jsonl instead of checkpoints (nothing is scored again).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Markdown table to write.")
@rescoring_options(checkpoints_required=False)
@click.pass_context
def report_score_components(context, metrics_log, data_root, out, device, checkpoints):
    """AUC of each GAN of attention-OCGAN cells alone and combined, and their masks: one row per checkpoint
    (e.g. runs/protocol/<tag>_attn-ocgan/class*/checkpoints/last.pt) or per cell of a metrics log."""
    from .protocol.reports.score_components import write_score_components

    rows = write_score_components(Path(out), _command_line(context), checkpoints,
                                  Path(metrics_log) if metrics_log else None, data_root, device)
    click.echo(f"wrote {out} ({rows} rows)")


@report.command("component-means")
@click.option("--metrics", "metrics_log", default=None, type=click.Path(dir_okay=False),
              help="A protocol runner's <tag>_<model>.metrics.jsonl (nothing is scored again); or pass checkpoints.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Markdown table to write (its plot: .png beside it).")
@rescoring_options(checkpoints_required=False)
@click.pass_context
def report_component_means(context, metrics_log, data_root, out, device, checkpoints):
    """Each score component's mean on normal and on novel test images and their ratio, per protocol cell
    or checkpoint (e.g. does Skip-GANomaly's U-Net reconstruct novel images as well as normal ones?)."""
    from .protocol.reports.component_means import write_component_means

    cells = write_component_means(Path(out), _command_line(context), None if metrics_log is None else Path(metrics_log),
                                  checkpoints, data_root, device)
    click.echo(f"wrote {out} ({cells} cells)")


@report.command("score-weightings")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Markdown table to write.")
@rescoring_options(checkpoints_required=True)
@click.pass_context
def report_score_weightings(context, data_root, out, device, checkpoints):
    """Test AUC of cells whose score combines components, under the weights they were trained with,
    equal weights and each component alone: one row per checkpoint (a diagnostic)."""
    from .protocol.reports.score_weightings import write_score_weightings

    rows = write_score_weightings(Path(out), _command_line(context), checkpoints, data_root, device)
    click.echo(f"wrote {out} ({len(rows)} rows)")


@report.command("complexity")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Markdown table to write; the figure goes beside it (.png).")
@rescoring_options(checkpoints_required=True)
@click.pass_context
def report_complexity(context, data_root, out, device, checkpoints):
    """Test AUC of image complexity alone and of each score raw and complexity-calibrated, one row per
    checkpoint of one model (a diagnostic)."""
    from .studies.complexity_calibration import write_complexity_calibration

    results = write_complexity_calibration(checkpoints, Path(out), _command_line(context), data_root, device)
    click.echo(f"wrote {out} and {Path(out).with_suffix('.png')} ({len(results)} rows)")


@report.command("ablation")
@click.option("--configs", "configs_dir", default="configs/ablation", show_default=True, type=click.Path(file_okay=False),
              help="Folder of the settings, one YAML per setting (configs/README.md).")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="The protocol's --results folder: the defaults' table <tag>_attn-ocgan.csv is in it or in one of "
                   "its dataset folders, each setting's beside it.")
@click.option("--tag", default="cifar10-jpeg", show_default=True, help="Tag of the defaults' table; settings are <tag>-abl-<name>.")
@click.option("--classes", default="0,1,9", show_default=True, help="Ablation classes (columns).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Markdown to write (default: ablation_<tag>_attn-ocgan.md beside the tables); a .png goes beside it.")
@click.option("--print-settings", is_flag=True, help="Print 'name:--config FILE' per setting and exit.")
@click.option("--run", is_flag=True, help="Train the missing cells first (protocol arguments after --).")
@click.option("--settings", "setting_names", default=None, help="With --run: which settings, comma-separated (default: all).")
@click.option("--jobs", type=int, default=2, show_default=True, help="With --run: protocol processes at a time.")
@click.option("--logs", default="logs/ablation", show_default=True, help="With --run: one log per cell.")
@click.argument("protocol_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def report_ablation(context, configs_dir, results_dir, tag, classes, out, print_settings, run, setting_names, jobs, logs,
                    protocol_args):
    """The attention ablation table: each setting of --configs against the defaults (reads the protocol
    tables; with --run, first trains the missing cells, arguments after -- going to every protocol call)."""
    from .protocol.reports.ablation import read_settings, run_ablation, settings_lines
    from .protocol.runner import parse_int_list

    settings = read_settings(Path(configs_dir))
    if print_settings:
        click.echo("\n".join(settings_lines(settings)))
        return 0
    if protocol_args and not run:
        raise UserError(f"unexpected arguments {' '.join(protocol_args)}; protocol arguments go after --run --")
    command = _command_line(context, keep=("configs_dir", "results_dir", "tag", "classes", "out"))  # re-draws, never trains
    return run_ablation(settings, Path(results_dir), tag, parse_int_list(classes, "classes"), command,
                        Path(out) if out else None, run, setting_names, jobs, Path(logs), protocol_args, echo=click.echo)


@report.command("proxy")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Markdown table to write; the curves go beside it (.png).")
@click.argument("run_folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.pass_context
def report_proxy(context, out, run_folders):
    """Candidate recipes on the validation split, epoch by epoch: one protocol run folder per recipe
    (runs/protocol/<tag>_<model>, trained with --select-epoch validation). Reads no test image."""
    from .protocol.reports.validation_traces import write_validation_sweep

    cells = write_validation_sweep(run_folders, Path(out), _command_line(context))
    click.echo(f"wrote {out} and {Path(out).with_suffix('.png')} ({cells} cells)")


@report.command("pixel-floors")
@click.option("--dataset", default="mnist", show_default=True, help="mnist, cifar10, folder, ... (as attn-ocgan protocol).")
@click.option("--data-root", default=None,
              help="Folder holding the datasets, each in its own sub-folder (default: $ATTN_OCGAN_DATA, else datasets/).")
@click.option("--folder", default="", help="--dataset folder: the image tree below the data root (default: the data root itself).")
@click.option("--tag", default=None, help="Table tag (default: the dataset's name), e.g. cifar10-jpeg.")
@click.option("--classes", default="0-9", show_default=True, help="Normal classes, e.g. 0-9 or 0,3,5.")
@click.option("--pca-variance", type=float, default=0.9, show_default=True, help="Share of variance the PCA keeps (0-1).")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Results folder; the tables go to RESULTS/<dataset>/ as the protocol's.")
@click.pass_context
def report_pixel_floors(context, dataset, data_root, folder, tag, classes, pca_variance, results_dir):
    """Training-free raw-pixel floors (nearest neighbour, PCA error) per class, as protocol tables
    <tag>_pixel-knn and <tag>_pixel-pca that attn-ocgan compare shows beside the models."""
    from .protocol.runner import parse_int_list
    from .studies.pixel_floors import run_pixel_floors

    paths = run_pixel_floors(dataset, data_root, tag, parse_int_list(classes, "classes"), pca_variance, Path(results_dir),
                             _command_line(context), folder, echo=click.echo)
    click.echo("tables: " + ", ".join(f"{path} and {path.with_suffix('.md')}" for path in paths.values()))


@cli.command("build-coco32")
@click.option("--coco-root", type=click.Path(file_okay=False), default=None,
              help="COCO root with annotations/instances_<split>.json and <split>/ images "
                   "(default: DATA_ROOT/coco).")
@click.option("--splits", default="train2017,val2017", show_default=True, help="COCO splits pooled as the source.")
@click.option("--data-root", default=None,
              help="Data root: reads DATA_ROOT/coco, writes DATA_ROOT/coco32 (default: $ATTN_OCGAN_DATA, else datasets/).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder (default: DATA_ROOT/coco32, where --dataset coco32 reads it).")
@click.option("--classes", default=None,
              help="Comma-separated COCO class names (default: COCO32's ten, DEFAULT_CLASSES in attn_ocgan/data/coco32_build.py).")
@click.option("--min-side", type=float, default=50.0, show_default=True, help="Keep boxes with width and height >= this (px).")
@click.option("--aspect-range", type=(float, float), default=(0.5, 2.0), show_default=True,
              help="Keep boxes whose w/h lies in [LOW, HIGH].")
@click.option("--size", type=int, default=32, show_default=True, help="Crop side after resizing.")
@click.option("--per-class", type=int, default=550, show_default=True, help="Objects per class (train + test).")
@click.option("--test-per-class", type=int, default=50, show_default=True, help="Of those, objects for the test split.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--allow-fewer", is_flag=True, help="Build what exists when a class has fewer eligible objects.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of unmasked vs masked crops per class here.")
def build_coco32(coco_root, splits, data_root, out, classes, min_side, aspect_range, size, per_class, test_per_class, seed,
                 allow_fewer, overwrite, quiet, contact_sheet):
    """Build COCO32 from COCO 2017: every object cropped to SIZE x SIZE, unmasked and masked, with a manifest and a summary."""
    from .data.coco32_build import DEFAULT_CLASSES, BuildOptions, build_coco32 as build, default_coco_root, default_out

    out = Path(out) if out else default_out(data_root)
    if contact_sheet:  # a place that takes no file fails now, not after the build
        Path(contact_sheet).parent.mkdir(parents=True, exist_ok=True)
    options = BuildOptions(
        coco_root=Path(coco_root) if coco_root else default_coco_root(data_root), out=out, splits=_names(splits),
        classes=_names(classes) if classes is not None else DEFAULT_CLASSES, min_side=min_side, aspect_range=tuple(aspect_range), size=size, per_class=per_class,
        test_per_class=test_per_class, seed=seed, allow_fewer=allow_fewer, overwrite=overwrite)
    summary = build(options, progress=not quiet, echo=lambda line: click.echo(line, err=True))
    click.echo(f"{'class':<14}{'eligible':>9}{'train':>7}{'test':>6}")
    for name, counts in summary["classes"].items():
        click.echo(f"{name:<14}{counts['eligible']:>9}{counts['train']:>7}{counts['test']:>6}")
    total = summary["total"]
    click.echo(f"wrote {total['train']} train + {total['test']} test crops (unmasked, masked, masks) to {out}")
    if contact_sheet:
        from .viz.coco32 import save_coco32_contact_sheet

        click.echo(f"contact sheet: {save_coco32_contact_sheet(out, contact_sheet)}")


def run_command(command: click.Command, argv=None, help_hint: str = "attn-ocgan --help") -> int:
    """Run a click command: user errors print their details (if any) and one line to stderr and
    return 2, with no traceback; Ctrl-C returns 130; a command that returns an int exits with it."""
    try:
        try:
            status = command.main(args=argv, standalone_mode=False)
        except BaseException:
            _close_progress_bars()  # an error message starts its own line, not the end of a bar's
            raise
    except UserError as error:
        if error.details:
            click.echo(error.details, err=True)
        click.echo(f"error: {error}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except OSError as error:  # a read-only or full disk, a path that is a file: name the path, no traceback
        if error.filename is None:
            raise
        click.echo(f"error: cannot write or read {error.filename}: {error.strerror or error}; "
                   "check the path, its permissions and the free disk space", err=True)
        return 2
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()} (see {help_hint})", err=True)
        return error.exit_code
    return status if isinstance(status, int) else 0


def _close_progress_bars() -> None:
    """Close every tqdm bar still open (a loop left by an exception), so it ends its line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv=None) -> int:
    """Entry point of ``attn-ocgan``."""
    return run_command(cli, argv)


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
