"""What each GAN of a finished attention-OCGAN protocol cell contributes, and where its masks sit.

One row per cell: the AUC of the combined score (the protocol's number), of the first GAN's error
alone (a vanilla OCGAN inside the model) and of the masked GAN's error alone, plus the masks'
statistics on normal test images (area, decisiveness, mean mask on bright and on dark pixels) and
the AUC of each per-image mask statistic as a novelty score (``mask_diagnostics.evidence_aucs``). A
diagnostic, never a selection: the combination weight stays the one in the config. The rows come
either from checkpoints (the test split is scored again) or from the metrics the protocol runner
logs beside its table (``<tag>_attn-ocgan.metrics.jsonl``; nothing is scored again).
"""
from __future__ import annotations

import datetime
from pathlib import Path

import torch

from ...data import load_one_class
from ...engine.checkpoint import model_from_checkpoint, read_checkpoint
from ...engine.device import resolve_device
from ...engine.evaluation import evaluate_model
from ...errors import UserError
from ...utils.environment import machine_description
from ...utils.io import atomic_write_text
from ..tables import LOGGED_CELL_KEYS, read_metrics_log

COLUMNS = ("class", "seed", "epochs", "combined AUC (the score)", "first GAN alone", "masked GAN alone", "mask area",
           "decisiveness", "template share", "mask on bright / dark pixels", "AUC of the mask's area / decisiveness / on bright pixels (ref.: bright share)",
           "AUC of the mask's distance from the normal template (ref.: the image's)")


def checkpoint_row(path: Path, data_root: str | None = None, device: str = "cpu") -> tuple[int, tuple]:
    """(normal class index, table cells) of one checkpoint, its test split scored again on ``device``."""
    payload = read_checkpoint(path)
    device = resolve_device(device)
    config, model = model_from_checkpoint(payload, device)
    blank = torch.zeros(1, model.config.in_channels, model.config.image_size, model.config.image_size, device=device)
    with torch.inference_mode():
        if model.attention_maps(blank) is None:
            raise UserError(f"{path} is a {config.model} checkpoint without attention; pass attn-ocgan checkpoints")
    data = load_one_class(config.data, data_root)
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
    mask_aucs = metrics.get("mask_aucs")  # logged since 2026-12-04
    evidence = (" / ".join(f"{mask_aucs[name]:.3f}" for name in ("area", "decisiveness", "on_bright_pixels"))
                + f" ({mask_aucs['reference_bright_share']:.3f})") if mask_aucs else "—"
    shape = (f"{mask_aucs['shape_deviation']:.3f} ({mask_aucs['reference_image_deviation']:.3f})"
             if mask_aucs and "shape_deviation" in mask_aucs else "—")  # logged since 2026-12-04
    return (metrics["normal_class_name"], seed, epoch, f"{metrics['auc']:.4f}", first, masked,
            f"{masks['area']:.3f}", f"{masks['decisiveness']:.3f}",
            f"{masks['template_share']:.3f}" if masks.get("template_share") is not None else "—",
            f"{masks['on_bright_pixels']:.3f} / {masks['on_dark_pixels']:.3f}", evidence, shape)


def logged_rows(path: Path) -> list[tuple[int, tuple]]:
    """(normal class index, table cells) for every cell of a protocol runner's metrics log."""
    if not Path(path).is_file():
        raise UserError(f"{path} does not exist; pass results/<dataset>/<tag>_attn-ocgan.metrics.jsonl written by "
                        "'attn-ocgan protocol'")
    cells = read_metrics_log(path, LOGGED_CELL_KEYS)
    if not cells:
        raise UserError(f"{path} holds no cells; run 'attn-ocgan protocol' first")
    return [(int(cell["normal_class"]), metrics_cells(cell["metrics"], int(cell["seed"]), int(cell["selected_epoch"] or cell["epochs"])))
            for cell in cells]


def score_components_markdown(rows: list[tuple], command: str) -> str:
    lines = ["# Attention OCGAN: AUC of each score component, and the masks of normal test images", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    lines += ["", "Decisiveness is mean |M - 0.5| (0: uniform grey, 0.5: binary); template share: how much of the "
              "masks' variance over the normal test images their mean mask explains (1: one fixed spatial template for "
              "every image; near 0: each image has its own mask); bright pixels are those above 0 "
              "in [-1, 1] (the strokes of a digit). The epoch column is that of the evaluated model; the combination weight is the config's. "
              "The last column: each per-image mask statistic used as a novelty score on the test images (0.5: the masks "
              "look the same on normal and novel images; far from 0.5 either way: they carry evidence of the class); in brackets "
              "the AUC of the images' bright-pixel share itself (the ink of a digit), which a mask that only followed "
              "bright pixels would reproduce. The column after it: each mask's mean squared distance from the mean mask of the "
              "normal training images used as a novelty score (does the mask's shape change on novel images?); in brackets "
              "the same for the image's distance from the mean normal training image (what a template of the images alone gives).", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}", ""]
    return "\n".join(lines)


def write_score_components(out: Path, command: str, checkpoints=(), metrics_log: Path | None = None,
                           data_root: str | None = None, device: str = "cpu", progress: bool = True) -> int:
    """Write the table from either ``checkpoints`` or a ``metrics_log`` (rows sorted by class, then
    seed); nothing is written when any input is refused. Returns the number of rows."""
    if bool(checkpoints) == (metrics_log is not None):
        raise UserError("pass either checkpoints or --metrics FILE")
    if metrics_log is not None:
        found = logged_rows(Path(metrics_log))
    else:
        from tqdm import tqdm

        found = [checkpoint_row(Path(path), data_root, device) for path in tqdm(checkpoints, desc="checkpoints", disable=not progress)]
    rows = [cells for _, cells in sorted(found, key=lambda row: (row[0], row[1][1]))]
    atomic_write_text(Path(out), score_components_markdown(rows, command))
    return len(rows)
