"""``attn-ocgan`` command line: parses flags, builds a config, calls the package. No logic here."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
import yaml

from .config import RunConfig, load_config_file, run_config_from_dict
from .engine.device import DEVICE_HELP
from .errors import UserError


def _parse_model_args(pairs) -> dict:
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--model-arg {pair!r} must look like KEY=VALUE, e.g. --model-arg latent_channels=32")
        key, text = pair.split("=", 1)
        values[key.strip()] = yaml.safe_load(text)
    return values


def build_config(config_file, model, dataset, normal_class, epochs, batch_size, lr, seed, data_root, download, size,
                 threads=None, model_args=(), eval_every=None, attention_flags=None, outlier_exposure=None,
                 variant=None, device=None, select_epoch=None, val_fraction=None, val_novel=None) -> RunConfig:
    """Defaults < config file < flags (flags left unset do not override). ``--select-epoch validation``
    without a hold-out holds out 10 % of the normal training images."""
    config = RunConfig()
    if config_file:
        config = run_config_from_dict(load_config_file(config_file), config, where=str(config_file))
    flags = {
        "model": model,
        "data": {k: v for k, v in dict(name=dataset, normal_class=normal_class, root=data_root, size=size,
                                       download=download or None, outlier_exposure=outlier_exposure,
                                       variant=variant, val_fraction=val_fraction, val_novel=val_novel).items() if v is not None},
        "train": {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads,
                                        eval_every=eval_every, device=device, select_epoch=select_epoch).items() if v is not None},
        "model_args": {**{k: v for k, v in (attention_flags or {}).items() if v is not None}, **_parse_model_args(model_args)},
    }
    if flags["model"] is None:
        del flags["model"]
    config = run_config_from_dict(flags, config, where="command-line flags")
    if config.train.select_epoch == "validation" and config.data.val_fraction == 0 and val_fraction is None:
        config = run_config_from_dict({"data": {"val_fraction": 0.1}}, config)
    return config


def common_options(function):
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with sections model/data/train/model_args."),
        click.option("--model", default=None, help="Registered model: attn-ocgan (default), ocgan, ganomaly, anogan."),
        click.option("--dataset", default=None,
                     help="mnist5k (embedded, default), mnist, fashion-mnist, cifar10, folder, coco32."),
        click.option("--variant", type=click.Choice(["unmasked", "masked"]), default=None,
                     help="coco32 only: unmasked crops (default) or masked crops (background 0)."),
        click.option("--epochs", type=int, default=None),
        click.option("--batch-size", type=int, default=None),
        click.option("--lr", type=float, default=None),
        click.option("--data-root", default=None, help="Folder holding the data (default: $ATTN_OCGAN_DATA, else datasets/)."),
        click.option("--download", is_flag=True, default=False, help="Let torchvision download the dataset (online users)."),
        click.option("--size", type=int, default=None, help="Image side in pixels (default 32)."),
        click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)."),
        click.option("--device", default=None, help=f"Where to train and score: {DEVICE_HELP}. Default auto."),
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
        # Attention OCGAN's main knobs as flags (each is also a --model-arg key).
        click.option("--temperature", type=float, default=None, help="attn-ocgan: mask = sigmoid(logits / T) (default 0.5)."),
        click.option("--mask-warmup-epochs", type=int, default=None,
                     help="attn-ocgan: epochs the attention generator and guide learn before the masked GAN starts."),
        click.option("--reset-masked-gan-at", type=int, default=None,
                     help="attn-ocgan: re-initialise the masked GAN at the start of this epoch (1-based; 0: never)."),
        click.option("--pretrain-attention-epochs", type=int, default=None,
                     help="attn-ocgan: epochs at the start where only the attention generator and guide learn."),
        click.option("--outlier-exposure", default=None, metavar="NAME[:ROOT]",
                     help="attn-ocgan: negatives for the guiding classifier from another dataset (default: none, strict one-class)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="attn-ocgan")
def cli():
    """One-class novelty detection: OCGAN and attention OCGAN."""


@cli.command()
@common_options
@click.option("--normal-class", type=int, default=None, help="The class trained on (default 0).")
@click.option("--seed", type=int, default=None)
@click.option("--out", default=None, help="Run folder (default runs/<model>-<dataset>-class<K>-seed<S>).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
def train(config_file, model, dataset, normal_class, epochs, batch_size, lr, seed, data_root, download, size, threads,
          eval_every, model_args, out, resume, overwrite, outlier_exposure, variant, device, select_epoch, val_fraction,
          val_novel, **attention_flags):
    """Train a model on the images of one normal class; checkpoints and TensorBoard logs go to --out."""
    from .data import load_one_class
    from .engine.checkpoint import model_from_checkpoint, read_checkpoint
    from .engine.device import resolve_device
    from .engine.evaluation import evaluate_model
    from .engine.trainer import train as run_training

    config = build_config(config_file, model, dataset, normal_class, epochs, batch_size, lr, seed, data_root, download,
                          size, threads, model_args, eval_every, attention_flags, outlier_exposure, variant, device,
                          select_epoch, val_fraction, val_novel)
    out = Path(out or f"runs/{config.model}-{config.data.name}-class{config.data.normal_class}-seed{config.train.seed}")
    data = load_one_class(config.data)
    result = run_training(config, out, resume=resume, overwrite=overwrite, data=data)
    _, trained = model_from_checkpoint(read_checkpoint(result["selected_checkpoint"]), resolve_device(config.train.device))
    metrics = evaluate_model(trained, data, out, title=f"{config.data.name} {config.model} class {config.data.normal_class}")
    chosen = "" if result["val_auc"] is None else f"; model of epoch {result['selected_epoch']}, validation AUC {result['val_auc']:.4f}"
    click.echo(f"test AUC {metrics['auc']:.4f} after {result['epochs']} epochs ({result['train_seconds']:.0f} s training{chosen})")
    click.echo(f"checkpoint: {result['selected_checkpoint']}")
    click.echo(f"TensorBoard logs: {out}  (tensorboard --logdir {out.parent})")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint written by 'attn-ocgan train'.")
@click.option("--data-root", default=None, help="Override the data root stored in the checkpoint.")
@click.option("--out", default=None, help="Folder for metrics.json, roc.png, score_histogram.png (default: the run folder).")
@click.option("--device", default="auto", show_default=True, help=f"Where to score: {DEVICE_HELP}.")
def evaluate(checkpoint, data_root, out, device):
    """Score the test split with a checkpoint: AUC, metrics.json, ROC curve and score histogram."""
    import dataclasses

    from .data import load_one_class
    from .engine.checkpoint import model_from_checkpoint, read_checkpoint
    from .engine.device import resolve_device
    from .engine.evaluation import evaluate_model

    config, model = model_from_checkpoint(read_checkpoint(checkpoint), resolve_device(device))
    data_config = config.data if data_root is None else dataclasses.replace(config.data, root=data_root)
    data = load_one_class(data_config)
    out = Path(out) if out else Path(checkpoint).resolve().parent.parent
    metrics = evaluate_model(model, data, out, title=f"{config.data.name} {config.model} class {config.data.normal_class}")
    click.echo(f"AUC {metrics['auc']:.4f} ({config.data.name}, normal class {config.data.normal_class}, {metrics['n_test']} test images)")
    written = [out / name for name in ("metrics.json", "roc.png", "score_histogram.png", "masks.png", "residuals.png") if (out / name).is_file()]
    click.echo("wrote " + ", ".join(str(path) for path in written))


@cli.command()
@common_options
@click.option("--classes", default="0-9", show_default=True, help="Normal classes, e.g. 0-9 or 0,3,5.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0,1,2.")
@click.option("--results", "results_dir", default="results", show_default=True, help="Folder for the CSV and Markdown table.")
@click.option("--runs", "runs_dir", default="runs/protocol", show_default=True, help="Folder for per-cell run folders.")
@click.option("--tag", default=None, help="Dataset name used in results file names (default: --dataset).")
def protocol(config_file, model, dataset, epochs, batch_size, lr, data_root, download, size, threads, eval_every,
             model_args, classes, seeds, results_dir, runs_dir, tag, outlier_exposure, variant, device, select_epoch,
             val_fraction, val_novel, **attention_flags):
    """Protocol 2 over classes x seeds: resumable; appends to results/<tag>_<model>.csv and writes the .md table."""
    from .protocol.runner import parse_int_list, run_protocol

    config = build_config(config_file, model, dataset, None, epochs, batch_size, lr, None, data_root, download, size,
                          threads, model_args, eval_every, attention_flags, outlier_exposure, variant, device,
                          select_epoch, val_fraction, val_novel)
    command = "attn-ocgan " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    csv_path = run_protocol(config, parse_int_list(classes, "classes"), parse_int_list(seeds, "seeds"),
                            Path(results_dir), Path(runs_dir), command, tag=tag, echo=click.echo)
    click.echo(f"results: {csv_path} and {csv_path.with_suffix('.md')}")


@cli.command()
@click.option("--data-root", default="datasets/coco32", show_default=True,
              help="A COCO32 folder built by tools/build_coco_subset.py.")
@click.option("--variants", default="masked,unmasked", show_default=True, help="Which crops to train on, in order.")
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True, help="SGD learning rate (momentum 0.9, constant).")
@click.option("--batch-norm", is_flag=True, help="Use timm's vgg11_bn instead of vgg11.")
@click.option("--no-augment", is_flag=True, help="Train without random crops and flips.")
@click.option("--seeds", default="0", show_default=True, help="Seeds, e.g. 0 or 0,1,2 (same seeds for every variant).")
@click.option("--results", "results_prefix", default="results/coco32_masked_vs_unmasked", show_default=True,
              help="Output prefix: writes PREFIX.csv (per epoch), PREFIX.png and PREFIX.md.")
@click.option("--logdir", default="runs/classify", show_default=True, help="TensorBoard folder (one run per variant/seed).")
def classify(data_root, variants, epochs, batch_size, lr, batch_norm, no_augment, seeds, results_prefix, logdir):
    """Masked vs unmasked COCO32: VGG11 from scratch on each variant, same seed and schedule."""
    from .studies.classification import ClassifierSchedule, run_masked_vs_unmasked
    from .protocol.runner import parse_int_list

    schedule = ClassifierSchedule(epochs=epochs, batch_size=batch_size, lr=lr, augment=not no_augment,
                                  batch_norm=batch_norm)
    chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
    unknown = [v for v in chosen if v not in ("masked", "unmasked")]
    if unknown or not chosen:
        raise UserError(f"--variants {variants!r} must list masked and/or unmasked")
    command = "attn-ocgan " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = run_masked_vs_unmasked(Path(data_root), Path(results_prefix), Path(logdir), schedule,
                                     parse_int_list(seeds, "seeds"), command, chosen, echo=click.echo)
    for variant, row in summary.items():
        click.echo(f"{variant}: final test accuracy {row['final_accuracy_mean']:.4f}, 80 % at epoch(s) {row['epochs_to_80']}")
    click.echo(f"results: {results_prefix}.csv, .png, .md; TensorBoard: {logdir}")


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A checkpoint to explain; repeat to compare (e.g. vanilla and attention).")
@click.option("--dataset", default=None, help="Dataset of the test images (default: the first checkpoint's).")
@click.option("--data-root", default=None, help="Data root (default: the first checkpoint's).")
@click.option("--normal-class", type=int, default=None, help="Normal class (default: the first checkpoint's).")
@click.option("--variant", type=click.Choice(["unmasked", "masked"]), default=None, help="coco32 only.")
@click.option("--n", "n_images", type=int, default=16, show_default=True, help="Normal and novel test images each.")
@click.option("--head", type=click.Choice(["visual_discriminator", "classifier", "guide"]), default="visual_discriminator",
              show_default=True, help="Single-logit network whose logit Grad-CAM explains.")
@click.option("--evidence", type=click.Choice(["normal", "novel"]), default="normal", show_default=True,
              help="Explain the logit (evidence for 'normal') or its negation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which test images are drawn.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG figure to write.")
@click.option("--logdir", default=None, help="Also write the grids to TensorBoard here.")
def gradcam(checkpoints, dataset, data_root, normal_class, variant, n_images, head, evidence, seed, out, logdir):
    """Grad-CAM of each checkpoint (and attention masks) on normal and novel test images."""
    from .studies.gradcam import run_gradcam_comparison

    path = run_gradcam_comparison(checkpoints, Path(out), n_images, head, evidence, dataset, data_root, normal_class,
                                  variant, Path(logdir) if logdir else None, seed)
    click.echo(f"wrote {path}" + (f"; TensorBoard: {logdir}" if logdir else ""))


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A trained checkpoint of one normal class; repeat to compare models (ocgan, attn-ocgan, ganomaly, anogan).")
@click.option("--dataset", default=None, help="Dataset of the images (default: the first checkpoint's).")
@click.option("--data-root", default=None, help="Data root (default: the first checkpoint's).")
@click.option("--normal-class", type=int, default=None, help="Normal class (default: the first checkpoint's).")
@click.option("--n", "n_images", type=int, default=8, show_default=True, help="Normal and novel test images in the residual figure.")
@click.option("--limit", type=int, default=2000, show_default=True,
              help="Score at most this many images per group (a seeded choice; AnoGAN's latent search is slow); 0: all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which images are drawn.")
@click.option("--out", "out_prefix", required=True, help="Prefix: writes PREFIX_scores.png and PREFIX_residuals.png.")
def figures(checkpoints, dataset, data_root, normal_class, n_images, limit, seed, out_prefix):
    """Score distributions and residual images of several models of one normal class."""
    from .studies.model_figures import run_model_figures

    paths = run_model_figures(checkpoints, Path(out_prefix), n_images, limit or None, seed, dataset, data_root, normal_class)
    click.echo("wrote " + " and ".join(str(path) for path in paths.values()))


@cli.command()
@click.option("--checkpoint", "checkpoints", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="A checkpoint whose maps are measured; repeat to compare.")
@click.option("--data-root", default="datasets/coco32", show_default=True, help="A COCO32 folder (with masks/).")
@click.option("--variant", type=click.Choice(["unmasked", "masked"]), default="unmasked", show_default=True,
              help="Which crops the models look at.")
@click.option("--split", type=click.Choice(["test", "train", "all"]), default="test", show_default=True)
@click.option("--head", type=click.Choice(["visual_discriminator", "classifier", "guide"]), default="visual_discriminator",
              show_default=True, help="Single-logit network for Grad-CAM.")
@click.option("--out", default="results/coco32_localisation.csv", show_default=True, type=click.Path(dir_okay=False),
              help="CSV to write (a Markdown table goes beside it).")
def localize(checkpoints, data_root, variant, split, head, out):
    """Pointing game and IoU of attention and Grad-CAM maps against COCO32 object masks."""
    from .studies.localisation import run_localisation

    command = "attn-ocgan " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    rows = run_localisation(checkpoints, Path(data_root), Path(out), variant, split, head, command)
    for row in rows:
        click.echo(f"{row['model']:<36} {row['map']:<32} pointing {row['pointing']:.3f}  "
                   f"IoU@0.5 {row['iou_at_0.5']:.3f}  IoU@mean {row['iou_at_mean']:.3f}")
    click.echo(f"wrote {out} and {Path(out).with_suffix('.md')}")


@cli.command()
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding the protocol tables <tag>_<model>.csv.")
@click.option("--datasets", default="mnist,cifar10", show_default=True, help="Dataset families, comma-separated.")
@click.option("--out", default="results/comparison.md", show_default=True, type=click.Path(dir_okay=False),
              help="Markdown table to write; a .png with per-class AUCs is written beside it.")
@click.option("--tags", default="*", show_default=True,
              help="Only tables whose tag matches this glob (e.g. 'cifar10-jpeg*' for the ablation tables).")
@click.option("--exclude-tags", default="*-abl-*", show_default=True,
              help="Leave out tables whose tag matches this glob ('' keeps all; the default drops ablation settings).")
@click.option("--models", default=None, help="Only these models, comma-separated (default: every model found).")
@click.option("--title", default="Comparison: every model on protocol 2", show_default=True, help="Heading of the table.")
def compare(results_dir, datasets, out, tags, exclude_tags, models, title):
    """One table of every model's protocol results per dataset, beside the published rows."""
    from .protocol.comparison import write_comparison
    from .reference import CLASS_NAMES

    chosen = tuple(d.strip() for d in datasets.split(",") if d.strip())
    unknown = [d for d in chosen if d not in CLASS_NAMES]
    if unknown or not chosen:
        raise UserError(f"--datasets {datasets!r}: choose from {', '.join(CLASS_NAMES)}")
    if not Path(results_dir).is_dir():
        raise UserError(f"results folder {results_dir} does not exist; run 'attn-ocgan protocol' first or pass --results")
    out = Path(out)
    chosen_models = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    write_comparison(Path(results_dir), out, chosen, figure=out.with_suffix(".png"), tags=tags, models=chosen_models,
                     title=title, exclude=exclude_tags)
    click.echo(f"wrote {out} and {out.with_suffix('.png')}")


def run_command(command: click.Command, argv=None, help_hint: str = "attn-ocgan --help") -> int:
    """Run a click command: user errors print their details (if any) and one line to stderr and
    return 2, with no traceback; Ctrl-C returns 130."""
    try:
        command.main(args=argv, standalone_mode=False)
    except UserError as error:
        if error.details:
            click.echo(error.details, err=True)
        click.echo(f"error: {error}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()} (see {help_hint})", err=True)
        return error.exit_code
    return 0


def main(argv=None) -> int:
    """Entry point of ``attn-ocgan``."""
    return run_command(cli, argv)


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
