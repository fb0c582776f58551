"""Masked-vs-unmasked experiment: VGG11 on 32x32 learns, and the CLI writes its outputs."""
import csv

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from attn_ocgan.cli import main
from attn_ocgan.data.coco32_build import build_coco32
from attn_ocgan.data.datasets import LabeledSplits
from attn_ocgan.studies.classification import ClassifierSchedule, build_vgg11, epochs_to_reach, train_classifier
from tests.unit.test_coco32 import _options, write_fake_coco


def _bright_vs_dark(n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    base = torch.where(labels[:, None, None, None] == 1, 200.0, 50.0)
    images = (base + 30 * torch.randn(n, 3, 32, 32, generator=generator)).clamp(0, 255).to(torch.uint8)
    return images, labels


def test_vgg11_is_adapted_to_32x32():
    model = build_vgg11(num_classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) < 10_000_000  # the 4096-wide 7x7 head is gone


def test_vgg11_learns_a_separable_task():
    generator = torch.Generator().manual_seed(0)
    splits = LabeledSplits(*_bright_vs_dark(32, generator), *_bright_vs_dark(16, generator), class_names=("dark", "bright"))
    history = train_classifier(splits, ClassifierSchedule(epochs=4, batch_size=8, batch_norm=True), seed=0,
                               progress=False)
    assert history[0]["test_accuracy"] <= history[-1]["test_accuracy"] == 1.0
    assert epochs_to_reach(history) is not None and history[-1]["train_loss"] < history[0]["train_loss"]


def test_classify_cli_writes_csv_plot_table_and_tensorboard(tmp_path, capsys):
    write_fake_coco(tmp_path / "coco")
    build_coco32(_options(tmp_path), progress=False)
    prefix, logdir = tmp_path / "results" / "mvu", tmp_path / "tb"
    assert main(["classify", "--data-root", str(tmp_path), "--epochs", "2", "--batch-size", "8",
                 "--results", str(prefix), "--logdir", str(logdir)]) == 0
    with prefix.with_suffix(".csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["epoch"]) for r in rows] == [("masked", "1"), ("masked", "2"), ("unmasked", "1"), ("unmasked", "2")]
    assert prefix.with_suffix(".png").stat().st_size > 0
    table = prefix.with_suffix(".md").read_text()
    assert "| masked | 16 / 4 |" in table and "0.9667" in table and "Produced by" in table
    events = EventAccumulator(str(logdir / "masked_seed0"))
    events.Reload()
    assert {"train/loss", "test/accuracy", "train/accuracy"} <= set(events.Tags()["scalars"])
    assert main(["classify", "--data-root", str(tmp_path), "--variants", "blurred"]) == 2
    (tmp_path / "a-file").write_text("not a folder")
    for bad in (["--device", "gpu"], ["--results", str(tmp_path / "a-file" / "mvu")]):  # refused before any training
        assert main(["classify", "--data-root", str(tmp_path), "--epochs", "2", "--logdir", str(tmp_path / "tb2"), *bad]) == 2
        assert not (tmp_path / "tb2").exists()
