"""What each GAN of a finished attention-OCGAN protocol cell contributes, and where its masks sit.

For every checkpoint given (e.g. the protocol runner's ``runs/protocol/<tag>_attn-ocgan/class*/checkpoints/last.pt``)
the whole test split is scored again and one row is written: the AUC of the combined score (the
protocol's number), of the first GAN's error alone (a vanilla OCGAN inside the model) and of the
masked GAN's error alone, plus the masks' statistics on normal test images (area, decisiveness,
mean mask on bright and on dark pixels). A diagnostic, never a selection: the combination weight
stays the one in the config.

    python benchmarks/score_components.py --data-root ../shared/data --out results/mnist_attn-ocgan_components.md \\
        runs/protocol/mnist_attn-ocgan/class*_seed*_e25/checkpoints/last.pt

Without the checkpoints (run folders are not kept), the same rows come from the metrics the
protocol runner logs for every cell beside its table, without scoring anything again:

    python benchmarks/score_components.py --metrics results/cifar10-jpeg_attn-ocgan.metrics.jsonl \\
        --out results/cifar10-jpeg_attn-ocgan_components.md
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import shlex
import sys
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attn_ocgan.data import load_one_class  # noqa: E402
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint  # noqa: E402
from attn_ocgan.utils.environment import machine_description  # noqa: E402
from attn_ocgan.engine.evaluation import evaluate_model  # noqa: E402
from attn_ocgan.utils.io import atomic_write_text  # noqa: E402
from attn_ocgan.protocol.tables import read_metrics_log  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402

COLUMNS = ("class", "seed", "epochs", "combined AUC (the score)", "first GAN alone", "masked GAN alone", "mask area",
           "decisiveness", "mask on bright / dark pixels")


def checkpoint_row(path: Path, data_root: str | None) -> tuple:
    """(normal class index, table cells) for one checkpoint."""
    payload = read_checkpoint(path)
    config, model = model_from_checkpoint(payload)
    if model.attention_maps(torch.zeros(1, model.config.in_channels, model.config.image_size, model.config.image_size)) is None:
        raise UserError(f"{path} is a {config.model} checkpoint without attention; pass attn-ocgan checkpoints")
    data = load_one_class(config.data if data_root is None else dataclasses.replace(config.data, root=data_root))
    metrics = evaluate_model(model, data)
    return data.normal_class, metrics_cells(metrics, config.train.seed, payload["epoch"])


def metrics_cells(metrics: dict, seed: int, epoch: int) -> tuple:
    """The table cells of one cell's evaluation metrics (``evaluate_model``'s dict)."""
    if "masks" not in metrics:
        raise UserError(f"the metrics of class {metrics.get('normal_class')} seed {seed} have no mask statistics; "
                        "pass attn-ocgan results with attention on")
    components = metrics.get("auc_per_score_component")  # absent while the masked GAN has not trained
    first, masked = (f"{components[name]:.4f}" for name in ("first_gan", "masked_gan")) if components else ("—", "— (untrained)")
    masks = metrics["masks"]["test_normal"]
    return (metrics["normal_class_name"], seed, epoch, f"{metrics['auc']:.4f}", first, masked,
            f"{masks['area']:.3f}", f"{masks['decisiveness']:.3f}",
            f"{masks['on_bright_pixels']:.3f} / {masks['on_dark_pixels']:.3f}")


def logged_rows(path: Path) -> list[tuple]:
    """(normal class index, table cells) for every cell of a protocol runner's metrics log."""
    if not Path(path).is_file():
        raise UserError(f"{path} does not exist; pass results/<tag>_attn-ocgan.metrics.jsonl written by 'attn-ocgan protocol'")
    return [(int(cell["normal_class"]), metrics_cells(cell["metrics"], int(cell["seed"]), int(cell["selected_epoch"] or cell["epochs"])))
            for cell in read_metrics_log(path)]


def table(rows: list[tuple], command: str) -> str:
    lines = ["# Attention OCGAN: AUC of each score component, and the masks of normal test images", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    lines += ["", "Decisiveness is mean |M - 0.5| (0: uniform grey, 0.5: binary); bright pixels are those above 0 "
              "in [-1, 1] (the strokes of a digit). The epoch column is that of the evaluated model; the combination weight is the config's.", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", help="attn-ocgan checkpoints (one row each, sorted by class)")
    parser.add_argument("--metrics", default=None, help="A protocol runner's <tag>_attn-ocgan.metrics.jsonl instead of checkpoints.")
    parser.add_argument("--data-root", default=None, help="Override the data root stored in the checkpoints.")
    parser.add_argument("--out", required=True, help="Markdown table to write.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if bool(args.checkpoints) == bool(args.metrics):
        parser.error("pass either checkpoints or --metrics FILE")
    try:
        found = (logged_rows(Path(args.metrics)) if args.metrics else
                 [checkpoint_row(Path(path), args.data_root) for path in tqdm(args.checkpoints, desc="checkpoints")])
        rows = [cells for _, cells in sorted(found, key=lambda row: (row[0], row[1][1]))]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    atomic_write_text(Path(args.out), table(rows, command))
    print(f"wrote {args.out} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
