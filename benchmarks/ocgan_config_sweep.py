"""Per-epoch validation AUC of OCGAN variants on chosen classes (for choosing defaults).

Defaults are chosen on a **validation split drawn from the training split only**: the last
``--val-fraction`` of the normal class's training images are held out of training (normal)
and ``--val-novel`` training images of the other classes are sampled once with a fixed
generator (novel). Test labels play no part in the choice; the test AUC is logged beside it
for monitoring only, as in the trainer's TensorBoard view.

Each row also carries ``val_auc_calibrated``, the validation AUC of the complexity-calibrated score
(``attn_ocgan/engine/calibration.py``; a diagnostic, ``--no-calibration`` skips it).

Each epoch prints and appends one JSON line to ``--log`` (with the command, machine and date that
produced it); a (class, variant) whose last epoch is already in the log is skipped, so an
interrupted sweep resumes where it stopped.

    python benchmarks/ocgan_config_sweep.py --data-root ../shared/data --classes 8,5 --epochs 35 \\
        --variant '{}' --variant '{"latent_adv_weight": 10}' --log results/ocgan_sweep_mnist.jsonl
    python benchmarks/ocgan_config_sweep.py --summarise --log results/ocgan_sweep_mnist.jsonl   # -> .md + .png
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attn_ocgan.config import TrainConfig  # noqa: E402
from attn_ocgan.data import load_splits, make_one_class  # noqa: E402
from attn_ocgan.utils.environment import machine_description, script_command  # noqa: E402
from attn_ocgan.engine.evaluation import (auc, complexity_metrics, compute_scores, has_attention,  # noqa: E402
                                         mask_statistics, scores_and_columns)
from attn_ocgan.utils.io import atomic_write_text  # noqa: E402
from attn_ocgan.protocol.runner import check_classes, parse_int_list  # noqa: E402
from attn_ocgan.engine.trainer import _batches  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402
from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config  # noqa: E402


def validation_split(splits, normal_class: int, val_fraction: float, n_novel: int):
    """(train normal, validation images, validation is_novel) from the training split only: the
    same split as ``--select-epoch validation`` (``make_one_class``)."""
    data = make_one_class(splits, normal_class, val_fraction, n_novel)
    images, is_novel = data.validation_set()
    return data, images, is_novel


@torch.inference_mode()
def component_aucs(model, images, is_novel, weights=(0.25, 0.5, 0.75)) -> dict:
    """Attention OCGAN: validation AUC of the first GAN's error alone (the vanilla OCGAN inside the
    model), of the masked GAN's alone, and of their normalised combination at several weights."""
    model.eval()
    components = torch.cat([model.score_components(images[start:start + 1000]) for start in range(0, len(images), 1000)])
    z = (components - model.score_mean) / model.score_std
    labels = is_novel.numpy()
    result = {"first_gan": round(auc(labels, z[:, 0].numpy()), 4), "masked_gan": round(auc(labels, z[:, 1].numpy()), 4)}
    result.update({f"w{w}": round(auc(labels, ((1 - w) * z[:, 0] + w * z[:, 1]).numpy()), 4) for w in weights})
    return result


def finished(log: Path, normal_class: int, variant: dict, seed: int, epochs: int, model: str = "ocgan") -> bool:
    if not log.is_file():
        return False
    for line in log.read_text().splitlines():
        row = json.loads(line)
        if (row["class"], row["variant"], row["seed"], row["epoch"], row.get("model", "ocgan")) == (normal_class, variant, seed, epochs, model):
            return True
    return False


def summarise(log: Path, epochs_at=(15, 25, 35), window: tuple[int, int] = (16, 25)) -> Path:
    """Markdown table + PNG of the per-epoch validation AUC curves, beside the log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs: dict[tuple, dict[int, dict]] = {}
    for line in log.read_text().splitlines():
        row = json.loads(line)
        label = ("" if row.get("model", "ocgan") == "ocgan" else row["model"] + " ") + json.dumps(row["variant"], sort_keys=True)
        runs.setdefault((row["class"], label, row["seed"]), {})[row["epoch"]] = row
    header = ("| class | variant | seed | " + " | ".join(f"val AUC @{e}" for e in epochs_at)
              + f" | val AUC mean ± std, epochs {window[0]}-{window[1]} | test AUC @{' / @'.join(map(str, epochs_at[-2:]))} (monitor only) "
              "| best val epoch: val / test AUC (what --select-epoch validation reports) |")
    lines = [f"# Sweep: {log.name}", "", "Validation split from the training split only (held-out normal training "
             "images vs other-class training images); test AUC shown for monitoring, never used to choose.", "",
             header, "|" + "---|" * (len(epochs_at) + 6)]
    classes = sorted({key[0] for key in runs})
    figure, axes = plt.subplots(1, len(classes), figsize=(5 * len(classes), 3.6), squeeze=False)
    variants = sorted({key[1] for key in runs})  # one colour per variant in every panel
    colours = {variant: f"C{index % 10}" for index, variant in enumerate(variants)}
    for (normal_class, variant, seed), curve in sorted(runs.items()):
        tail = [curve[e]["val_auc"] for e in range(window[0], window[1] + 1) if e in curve]
        at = [f"{curve[e]['val_auc']:.4f}" if e in curve else "—" for e in epochs_at]
        test = " / ".join(f"{curve[e]['test_auc_monitor_only']:.4f}" if e in curve else "—" for e in epochs_at[-2:])
        best = max(sorted(curve), key=lambda e: curve[e]["val_auc"])  # the first epoch reaching the maximum, as the trainer keeps it
        chosen = f"{best}: {curve[best]['val_auc']:.4f} / {curve[best]['test_auc_monitor_only']:.4f}"
        lines.append(f"| {normal_class} | `{variant}` | {seed} | " + " | ".join(at)
                     + (f" | {np.mean(tail):.4f} ± {np.std(tail):.4f} ({len(tail)} epochs)" if tail else " | —") + f" | {test} | {chosen} |")
        axis = axes[0][classes.index(normal_class)]
        epochs = sorted(curve)
        line, = axis.plot(epochs, [curve[e]["val_auc"] for e in epochs], label=variant, color=colours[variant])
        if all("val_auc_components" in curve[e] for e in epochs):  # attention: its first GAN (vanilla OCGAN) dashed
            axis.plot(epochs, [curve[e]["val_auc_components"]["first_gan"] for e in epochs], "--", color=line.get_color(),
                      alpha=0.6, label=f"{variant}: first GAN only")
        axis.set(title=f"class {normal_class}", xlabel="epoch", ylabel="validation AUC")
    for axis in axes[0]:
        axis.legend(fontsize=7)
    figure.tight_layout()
    png = log.with_suffix(".png")
    figure.savefig(png, dpi=100)
    lines += attention_table(runs, window) + calibration_table(runs, window) + provenance(log)
    md = log.with_suffix(".md")
    atomic_write_text(md, "\n".join(lines + ["", f"![validation AUC per epoch]({png.name})", ""]))
    return md


def provenance(log: Path) -> list[str]:
    """'Produced by': each distinct command in the log with its machine(s) and dates (rows written
    before the sweep recorded them are counted, not described)."""
    sources: dict[str, dict[str, set]] = {}
    unrecorded = 0
    for line in log.read_text().splitlines():
        row = json.loads(line)
        if "command" not in row:
            unrecorded += 1
            continue
        source = sources.setdefault(row["command"], {"machine": set(), "date": set()})
        source["machine"].add(row["machine"])
        source["date"].add(row["date"])
    lines = ["", "Produced by:", ""]
    for command, source in sources.items():
        lines += [f"    {command}", "", f"on {'; '.join(sorted(source['machine']))}, {', '.join(sorted(source['date']))}.", ""]
    if unrecorded:
        lines.append(f"{unrecorded} rows predate the sweep's recording of its command (see results/README.md).")
    return lines


def calibration_table(runs: dict, window: tuple[int, int]) -> list[str]:
    """Validation AUC of the score raw and complexity-calibrated (``attn_ocgan/engine/calibration.py``),
    means over the window, for runs that logged it (a diagnostic: nothing is chosen with it)."""
    import numpy as np

    lines = []
    for (normal_class, variant, seed), curve in sorted(runs.items()):
        rows = [curve[e] for e in range(window[0], window[1] + 1) if curve.get(e, {}).get("val_auc_calibrated") is not None]
        if rows:
            lines.append(f"| {normal_class} | `{variant}` | {seed} | {np.mean([r['val_auc'] for r in rows]):.4f} "
                         f"| {np.mean([r['val_auc_calibrated'] for r in rows]):.4f} | {len(rows)} |")
    if not lines:
        return []
    return ["", f"## Complexity-calibrated score: validation AUC, mean over epochs {window[0]}-{window[1]}", "",
            "| class | variant | seed | raw score (same epochs) | calibrated | epochs |", "|---|---|---|---|---|---|", *lines]


def attention_table(runs: dict, window: tuple[int, int]) -> list[str]:
    """For attention runs: validation AUC of each score component (means over the window) and the
    masks at the last epoch (area, decisiveness |M - 0.5|, mean mask on bright / dark pixels)."""
    import numpy as np

    attention_runs = {key: curve for key, curve in runs.items() if any("val_auc_components" in r for r in curve.values())}
    if not attention_runs:
        return []
    lines = ["", f"## Attention runs: validation AUC per score component (mean over epochs {window[0]}-{window[1]}) "
             "and the masks of normal validation images at the last epoch", "",
             "| class | variant | first GAN (a vanilla OCGAN inside the model) | masked GAN | combined w=0.5 (the score) | w=0.25 | w=0.75 "
             "| mask area | decisiveness | mask on bright / dark pixels |", "|" + "---|" * 10]
    for (normal_class, variant, _), curve in sorted(attention_runs.items()):
        rows = [curve[e] for e in range(window[0], window[1] + 1) if e in curve and "val_auc_components" in curve[e]]
        if not rows:
            continue
        mean = {k: np.mean([r["val_auc_components"][k] for r in rows]) for k in ("first_gan", "masked_gan", "w0.5", "w0.25", "w0.75")}
        masks = curve[max(curve)]["masks"]["normal"]
        lines.append(f"| {normal_class} | `{variant}` | {mean['first_gan']:.4f} | {mean['masked_gan']:.4f} | {mean['w0.5']:.4f} "
                     f"| {mean['w0.25']:.4f} | {mean['w0.75']:.4f} | {masks['area']:.3f} | {masks['decisiveness']:.3f} "
                     f"| {masks['on_bright_pixels']:.3f} / {masks['on_dark_pixels']:.3f} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ocgan", help="registered model (attn-ocgan rows add mask statistics)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--classes", default="8")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="held-out share of the normal training images")
    parser.add_argument("--val-novel", type=int, default=2000, help="other-class training images in the validation split")
    parser.add_argument("--variant", action="append", default=None, help="JSON dict of model args (repeatable)")
    parser.add_argument("--no-calibration", action="store_true",
                        help="skip the per-epoch complexity-calibrated validation AUC (it rescores the training images every epoch; "
                             "costly for anogan's latent search)")
    parser.add_argument("--log", default=None, help="JSON-lines file to append to (and to resume from)")
    parser.add_argument("--summarise", action="store_true", help="only write LOG.md and LOG.png from --log")
    parser.add_argument("--summary-epochs", default="15,25,35", help="--summarise: epochs shown one by one")
    parser.add_argument("--window", default="16,25", help="--summarise: first,last epoch of the averaged window")
    args = parser.parse_args(argv)
    command = script_command("benchmarks/ocgan_config_sweep.py", argv)
    try:
        if args.summarise:
            if not args.log or not Path(args.log).is_file():
                raise UserError(f"--summarise reads an existing --log JSON-lines file; got {args.log!r}")
            try:
                window = tuple(int(v) for v in args.window.split(","))
            except ValueError:
                window = ()
            if len(window) != 2:
                raise UserError(f"--window takes first,last epoch (e.g. 16,25); got {args.window!r}")
            print(summarise(Path(args.log), tuple(parse_int_list(args.summary_epochs, "epochs")), window))
            return 0
        splits, classes, variants = checked_sweep_inputs(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run_sweep(args, splits, classes, variants, command)
    return 0


def checked_sweep_inputs(args):
    """(splits, classes, variants), each checked before any training starts, so that a typo in the
    last --variant fails at once instead of after hours of sweeping."""
    variants = []
    for text in args.variant or ["{}"]:
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"--variant {text!r} is not JSON ({error.msg}); pass a dict such as '{{\"latent_channels\": 8}}'") from None
        if not isinstance(overrides, dict):
            raise UserError(f"--variant {text!r} must be a JSON dict of model args, e.g. '{{\"latent_channels\": 8}}'")
        variants.append(overrides)
    splits = load_splits(args.dataset, args.data_root)
    classes = parse_int_list(args.classes, "classes")
    check_classes(classes, splits.class_names, args.dataset)
    for overrides in variants:  # unknown model args raise here
        resolve_model_config(args.model, args.dataset, overrides, splits.in_channels, splits.train_images.shape[-1])
    return splits, classes, variants


def run_sweep(args, splits, classes, variants, command: str) -> None:
    log = Path(args.log) if args.log else None
    for normal_class in classes:
        data, val_images, val_is_novel = validation_split(splits, normal_class, args.val_fraction, args.val_novel)
        for overrides in variants:
            if log and finished(log, normal_class, overrides, args.seed, args.epochs, args.model):
                print(f"skip class {normal_class} {overrides}: done in {log}", flush=True)
                continue
            torch.manual_seed(args.seed)
            config = resolve_model_config(args.model, args.dataset, overrides, data.in_channels, data.image_size)
            model = create_model(args.model, config)
            algorithm = create_algorithm(args.model, model, config, TrainConfig(batch_size=args.batch_size))
            for epoch in range(args.epochs):
                started, n_images = time.perf_counter(), 0
                algorithm.start_epoch(epoch)
                for batch in _batches(len(data.train), args.batch_size):
                    algorithm.train_step(data.train[batch], epoch)
                    n_images += len(batch)
                algorithm.end_epoch(data.train)  # e.g. score statistics (normal training images only)
                rate = n_images / (time.perf_counter() - started)
                val_scores, val_columns = scores_and_columns(model, val_images)
                row = {"class": normal_class, "variant": overrides, "seed": args.seed, "epoch": epoch + 1,
                       "train_img_per_s": round(rate),
                       "val_auc": round(auc(val_is_novel.numpy(), val_scores), 4),
                       "test_auc_monitor_only": round(auc(data.test_is_novel.numpy(), compute_scores(model, data.test)), 4)}
                if args.model != "ocgan":
                    row["model"] = args.model
                row.update(command=command, machine=machine_description(), date=datetime.date.today().isoformat())
                if not args.no_calibration:
                    complexity = complexity_metrics(model, scores_and_columns(model, data.train)[1], val_columns,
                                                    data.train, val_images, val_is_novel.numpy())  # a diagnostic column; the summary does not select on it
                    calibrated = complexity["auc_calibrated"]
                    row["val_auc_calibrated"] = None if calibrated is None else round(calibrated, 4)
                if has_attention(model):
                    row["val_auc_components"] = component_aucs(model, val_images, val_is_novel)
                    masks = mask_statistics(model, {"normal": val_images[val_is_novel == 0], "novel": val_images[val_is_novel == 1]})
                    row["masks"] = {group: {k: round(v, 4) for k, v in values.items()} for group, values in masks.items()}
                print(json.dumps(row), flush=True)
                if log:
                    with log.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    sys.exit(main())
