"""anomalib's Ganomaly and ours on the same one-class split, in one run: test AUC and seconds per epoch.

anomalib is NOT a dependency of attn-ocgan: ``run_anomalib`` imports it when called, from the
benchmark's own environment (``make benchmark-anomalib``). Both models see the same images: our
protocol-2 split (train: the normal class's training images; test: the whole test split). For
anomalib the split is written once as PNG folders (train normal / test normal / test abnormal) and
read by its ``Folder`` datamodule; its validation set is the test set
(``val_split_mode="same_as_test"``) so that no test image is moved. anomalib runs with its defaults
(ImageNet normalisation, batch 32 unless set otherwise) at input size 32.
"""
from __future__ import annotations

import datetime
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, RunConfig, TrainConfig
from ..data import load_one_class
from ..engine.checkpoint import model_from_checkpoint, read_checkpoint
from ..engine.evaluation import auc, compute_scores
from ..engine.trainer import train
from ..utils.environment import machine_description
from ..utils.io import atomic_write_json


def export_split(data, root: Path) -> dict[str, int]:
    """PNG folders of the one-class split: train_normal/, test_normal/, test_abnormal/ (pixel-exact)."""
    from PIL import Image

    groups = {"train_normal": data.train, "test_normal": data.test[data.test_is_novel == 0],
              "test_abnormal": data.test[data.test_is_novel == 1]}
    for name, images in groups.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        pixels = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        for index, image in enumerate(pixels):
            Image.fromarray(image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)).save(folder / f"{index:05d}.png")
    return {name: len(images) for name, images in groups.items()}


def run_anomalib(root: Path, epochs: int, batch_size: int, seed: int) -> dict:
    """anomalib's Ganomaly trained and tested on the exported split under ``root``."""
    import anomalib
    from anomalib.data import Folder
    from anomalib.engine import Engine
    from anomalib.metrics import AUROC, Evaluator, F1Score
    from anomalib.models import Ganomaly
    from lightning.pytorch import Callback, seed_everything

    class EpochTimer(Callback):
        """Seconds of training batches per epoch (validation excluded)."""

        def __init__(self):
            self.seconds, self._start = [], None

        def on_train_epoch_start(self, trainer, module):
            self._start = time.perf_counter()

        def on_validation_epoch_start(self, trainer, module):
            if self._start is not None and trainer.training:
                self.seconds.append(time.perf_counter() - self._start)
                self._start = None

        def on_train_epoch_end(self, trainer, module):
            if self._start is not None:  # no validation ran this epoch
                self.seconds.append(time.perf_counter() - self._start)
                self._start = None

    class TestAurocPerEpoch(Callback):
        """The validation AUROC (validation set = test set) after each epoch, read once every
        callback (anomalib's Evaluator included) has logged it. anomalib's default Ganomaly
        evaluator has test metrics only, hence the explicit ``val_metrics`` below."""

        def __init__(self):
            self.values = []

        def on_train_epoch_end(self, trainer, module):
            value = trainer.callback_metrics.get("val_image_AUROC")
            if value is not None:
                self.values.append(float(value))

    seed_everything(seed, workers=True)
    datamodule = Folder(name="one_class", root=root, normal_dir="train_normal", normal_test_dir="test_normal",
                        abnormal_dir="test_abnormal", train_batch_size=batch_size, eval_batch_size=batch_size,
                        num_workers=0, val_split_mode="same_as_test", seed=seed)
    evaluator = Evaluator(val_metrics=[AUROC(fields=["pred_score", "gt_label"], prefix="val_image_")],
                          test_metrics=[AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
                                        F1Score(fields=["pred_label", "gt_label"], prefix="image_")])  # its default + val AUROC
    model = Ganomaly(batch_size=batch_size, pre_processor=Ganomaly.configure_pre_processor((32, 32)),
                     evaluator=evaluator, visualizer=False)  # no result images written: time goes to the model
    timer, auroc = EpochTimer(), TestAurocPerEpoch()
    engine = Engine(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,  # Engine adds its own checkpointing
                    callbacks=[timer, auroc], default_root_dir=str(root / "anomalib_results"))
    engine.fit(model=model, datamodule=datamodule)
    started = time.perf_counter()
    results = engine.test(model=model, datamodule=datamodule, verbose=False)
    test_seconds = time.perf_counter() - started
    return {"version": anomalib.__version__, "auc": float(results[0]["image_AUROC"]),
            "auc_per_epoch_validation_on_test": auroc.values, "seconds_per_epoch": timer.seconds,
            "test_seconds": test_seconds, "batch_size": batch_size}


def run_ours(data_config: DataConfig, epochs: int, batch_size: int, seed: int, run_dir: Path) -> dict:
    """Our ganomaly trained and scored on the same split."""
    config = RunConfig(model="ganomaly", data=data_config, train=TrainConfig(epochs=epochs, batch_size=batch_size,
                                                                            seed=seed, eval_every=0))
    data = load_one_class(data_config)
    result = train(config, run_dir, data=data, progress=False)
    _, model = model_from_checkpoint(read_checkpoint(result["checkpoint"]))
    started = time.perf_counter()
    scores = compute_scores(model, data.test)
    test_seconds = time.perf_counter() - started
    return {"auc": auc(data.test_is_novel.numpy(), scores), "seconds_per_epoch": result["train_seconds"] / epochs,
            "test_seconds": test_seconds, "batch_size": batch_size}


def run_side_by_side(data_config: DataConfig, epochs: int, batch_size: int, seed: int, out: Path, command: str,
                     echo: Callable[[str], None] = print) -> dict:
    """Both implementations on the same exported split; writes one JSON (``out``) with both results,
    the split's sizes, the ratio of anomalib's median seconds per epoch to ours, and the command,
    machine and date. Returns that payload."""
    data = load_one_class(data_config)
    with tempfile.TemporaryDirectory(prefix="anomalib_side_by_side_") as folder:
        root = Path(folder)
        sizes = export_split(data, root / "images")
        echo(f"split: {sizes}")
        anomalib_result = run_anomalib(root / "images", epochs, batch_size, seed)
        echo(f"anomalib Ganomaly: {anomalib_result}")
        ours = run_ours(data_config, epochs, batch_size, seed, root / "ours")
        echo(f"ours ganomaly: {ours}")
    payload = {
        "command": command, "machine": machine_description(), "date": datetime.date.today().isoformat(),
        "dataset": data_config.name, "normal_class": data_config.normal_class, "epochs": epochs, "seed": seed,
        "images": sizes, "anomalib_ganomaly": anomalib_result, "attn_ocgan_ganomaly": ours,
        "ratio_seconds_per_epoch_anomalib_over_ours": float(np.median(anomalib_result["seconds_per_epoch"])) / ours["seconds_per_epoch"],
    }
    atomic_write_json(Path(out), payload)
    return payload
