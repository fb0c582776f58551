"""Supervised classification on COCO32: does masking the background help a CNN learn?

Reproduces the original authors' masked-vs-unmasked experiment: VGG11 (timm) trained from
scratch on each variant with the same seed and schedule; test accuracy per epoch, the
first epoch reaching 80 %, and the final accuracy.
"""
from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.datasets import LabeledSplits, dataset_path, load_coco32
from ..data.one_class import to_unit_range
from ..engine.device import model_device, prepare_device, resolve_device
from ..errors import UserError
from ..utils.io import atomic_path, atomic_write_text

# The original authors' numbers on the full 5500-crop COCO32 (5000 train / 500 test).
REFERENCE = {"masked": {"final_accuracy": 0.9667, "epochs_to_80": 25},
             "unmasked": {"final_accuracy": 0.9525, "epochs_to_80": 64}}
TARGET_ACCURACY = 0.8


@dataclass(frozen=True)
class ClassifierSchedule:
    epochs: int = 100
    batch_size: int = 64
    lr: float = 0.01  # SGD, momentum 0.9, constant: "epochs to 80 %" is then a property of the data
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True  # random 4-pixel-padded crop + horizontal flip, on the fly
    batch_norm: bool = False  # timm 'vgg11' (as the original) or 'vgg11_bn'

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1")
        if self.lr <= 0:
            raise UserError("--lr must be > 0")


def build_vgg11(num_classes: int, in_channels: int = 3, batch_norm: bool = False) -> nn.Module:
    """timm VGG11 from scratch, adapted to 32x32 inputs.

    Five max-pools leave a 1x1x512 map at 32x32; timm's head is a 7x7 ConvMlp of width 4096
    (about 120 M parameters, made for 224x224 inputs), so it is replaced by global pooling
    and one linear layer, as in the usual CIFAR VGG (9.2 M parameters in all).
    """
    import timm
    from timm.layers import ClassifierHead

    model = timm.create_model("vgg11_bn" if batch_norm else "vgg11", pretrained=False, num_classes=num_classes,
                              in_chans=in_channels)
    model.pre_logits = nn.Identity()
    model.head = ClassifierHead(model.num_features, num_classes, pool_type="avg")
    return model


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop after 4-pixel replicate padding and random horizontal flip; (B, C, H, W) -> same."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (4, 4, 4, 4), mode="replicate")
    offsets = torch.randint(0, 9, (batch, 2), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    out = torch.empty_like(images)
    for index in range(batch):
        top, left = offsets[index].tolist()
        crop = padded[index, :, top:top + height, left:left + width]
        out[index] = crop.flip(-1) if flips[index] else crop
    return out


@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Share of ``images`` (on any device; batches go to the model's) classified as ``labels``."""
    model.eval()
    device = model_device(model)
    correct = sum(int((model(images[i:i + batch_size].to(device)).argmax(1).cpu() == labels[i:i + batch_size]).sum())
                  for i in range(0, len(images), batch_size))
    return correct / max(1, len(images))


def train_classifier(splits: LabeledSplits, schedule: ClassifierSchedule, seed: int, writer=None, progress: bool = True,
                     device: str | torch.device = "cpu"):
    """Train VGG11 on ``splits`` from scratch on ``device``; returns one dict per epoch (loss, train/test
    accuracy). Batches are drawn and augmented on the CPU with a seeded generator (the same on every
    device), then moved."""
    from tqdm import tqdm

    device = resolve_device(device)
    prepare_device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_vgg11(len(splits.class_names), splits.in_channels, schedule.batch_norm)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    train_images, train_labels = to_unit_range(splits.train_images), splits.train_labels
    test_images, test_labels = to_unit_range(splits.test_images), splits.test_labels
    history = []
    bar = tqdm(range(1, schedule.epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        started, total_loss = time.perf_counter(), 0.0
        order = torch.randperm(len(train_images), generator=generator)
        for start in range(0, len(order), schedule.batch_size):
            index = order[start:start + schedule.batch_size]
            images = train_images[index]
            if schedule.augment:
                images = augment_batch(images, generator)
            images = images.to(device).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(images), train_labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
        train_seconds = time.perf_counter() - started  # training steps only, not the accuracy passes
        row = {"epoch": epoch, "train_loss": total_loss / len(train_images),
               "train_accuracy": accuracy(model, train_images, train_labels),
               "test_accuracy": accuracy(model, test_images, test_labels),
               "epoch_seconds": train_seconds}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", test=f"{row['test_accuracy']:.3f}")
        if writer is not None:
            for key in ("train_loss", "train_accuracy", "test_accuracy"):
                writer.add_scalar(key.replace("_", "/", 1), row[key], epoch)
    return history


def epochs_to_reach(history: list[dict], target: float = TARGET_ACCURACY) -> int | None:
    """First epoch whose test accuracy is >= ``target`` (None: never)."""
    return next((row["epoch"] for row in history if row["test_accuracy"] >= target), None)


CSV_FIELDS = ("variant", "seed", "epoch", "train_loss", "train_accuracy", "test_accuracy", "epoch_seconds")


def run_masked_vs_unmasked(data_root: Path, results_prefix: Path, logdir: Path, schedule: ClassifierSchedule,
                           seeds: list[int], command: str, variants=("masked", "unmasked"), progress: bool = True,
                           echo=print, device: str = "cpu") -> dict:
    """Train on each variant x seed; write PREFIX.csv (per epoch), PREFIX.png and PREFIX.md."""
    from torch.utils.tensorboard import SummaryWriter

    from ..utils.environment import machine_description

    machine = machine_description(resolve_device(device))  # a bad --device fails before anything is written
    Path(results_prefix).parent.mkdir(parents=True, exist_ok=True)  # and a place that takes no file, before training
    histories: dict[tuple[str, int], list[dict]] = {}
    sizes = {}
    for variant in variants:
        splits = load_coco32(dataset_path("coco32", data_root), 32, False, variant)
        sizes[variant] = (len(splits.train_labels), len(splits.test_labels), len(splits.class_names))
        if sizes[variant][1] == 0:
            raise UserError(f"COCO32 at {data_root} has no test crops; rebuild it with --test-per-class >= 1")
        for seed in seeds:
            echo(f"train VGG11 on {variant} crops, seed {seed} ({sizes[variant][0]} train / {sizes[variant][1]} test)")
            with SummaryWriter(str(Path(logdir) / f"{variant}_seed{seed}")) as writer:
                histories[variant, seed] = train_classifier(splits, schedule, seed, writer, progress, device)
            last = histories[variant, seed][-1]
            echo(f"  final test accuracy {last['test_accuracy']:.4f}, "
                 f"80 % at epoch {epochs_to_reach(histories[variant, seed])}")
    summary = summarise(histories, sizes)
    _write_outputs(Path(results_prefix), histories, summary, schedule, sizes, command, machine)
    return summary


def summarise(histories: dict, sizes: dict) -> dict:
    summary = {}
    for variant in sizes:
        runs = [history for (name, _), history in histories.items() if name == variant]
        finals = torch.tensor([history[-1]["test_accuracy"] for history in runs])
        reached = [epochs_to_reach(history) for history in runs]
        summary[variant] = {"final_accuracy_mean": float(finals.mean()),
                            "final_accuracy_std": float(finals.std()) if len(finals) > 1 else 0.0,
                            "epochs_to_80": reached, "train": sizes[variant][0], "test": sizes[variant][1]}
    return summary


def save_history_plot(histories: dict, sizes: dict, path: Path) -> None:
    """Test accuracy (left) and training loss (right) per epoch for every (variant, seed)."""
    from ..viz.plots import plt, save_figure

    figure, (accuracy_axis, loss_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for (variant, seed), history in histories.items():
        style = dict(color="tab:blue" if variant == "masked" else "tab:orange", label=f"{variant} (seed {seed})",
                     alpha=0.9 if seed == min(s for v, s in histories if v == variant) else 0.5)
        epochs = [r["epoch"] for r in history]
        accuracy_axis.plot(epochs, [r["test_accuracy"] for r in history], **style)
        loss_axis.plot(epochs, [r["train_loss"] for r in history], **style)
    accuracy_axis.axhline(TARGET_ACCURACY, color="grey", linestyle=":", label="80 %")
    accuracy_axis.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.02))
    loss_axis.set(xlabel="epoch", ylabel="training loss (cross-entropy)")
    accuracy_axis.legend(loc="lower right", fontsize=8)
    n_train, n_test, n_classes = next(iter(sizes.values()))
    figure.suptitle(f"VGG11 from scratch on COCO32 ({n_train} train / {n_test} test crops, {n_classes} classes)")
    save_figure(figure, Path(path))


def _write_outputs(prefix: Path, histories, summary, schedule, sizes, command: str, machine: str) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(prefix.with_suffix(".csv")) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for (variant, seed), history in histories.items():
            for row in history:
                writer.writerow({"variant": variant, "seed": seed,
                                 **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}})

    save_history_plot(histories, sizes, prefix.with_suffix(".png"))

    lines = ["# COCO32: VGG11 on masked vs unmasked crops", "",
             "| variant | train / test crops | final test accuracy | first epoch >= 80 % | "
             "reference final (5000 / 500 crops) | reference epoch >= 80 % |", "|---|---|---|---|---|---|"]
    for variant, row in summary.items():
        reference = REFERENCE.get(variant, {})
        spread = f" ± {row['final_accuracy_std']:.4f}" if row["final_accuracy_std"] else ""
        reached = ", ".join("never" if e is None else str(e) for e in row["epochs_to_80"])
        lines.append(f"| {variant} | {row['train']} / {row['test']} | {row['final_accuracy_mean']:.4f}{spread} | "
                     f"{reached} | {reference.get('final_accuracy', float('nan')):.4f} | "
                     f"{reference.get('epochs_to_80', '—')} |")
    lines += ["", f"Schedule: {asdict(schedule)}; seeds: {sorted({s for _, s in histories})}. "
              "Accuracy is measured on the test crops after every epoch (no model selection: the final epoch is "
              "reported). Reference: the original authors' run on the full 5500-crop COCO32.", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine}", ""]
    atomic_write_text(prefix.with_suffix(".md"), "\n".join(lines))
