"""Raw-pixel floors on protocol 2: what a GAN has to beat to have learnt anything.

Two training-free baselines per normal class, fitted on the normal *training* images only and
scored on the whole test split (novel = positive):

- ``pixel-knn``: Euclidean distance to the nearest normal training image;
- ``pixel-pca``: reconstruction error after projecting on the principal components that keep a
  share of the normal training images' variance (0.9 by default; ``pixel-pca95`` etc. otherwise).

The rows go to ``<tag>_pixel-knn.csv`` and ``<tag>_pixel-pca.csv`` in the protocol runner's format
and folder (``RESULTS/<dataset>/``), so ``attn-ocgan compare`` shows them beside the models.
"""
from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data import dataset_label, load_splits, make_one_class
from ..engine.evaluation import auc
from ..errors import UserError
from ..protocol.runner import check_classes, results_table_path
from ..protocol.tables import append_row, read_rows
from ..utils.environment import machine_description


def nearest_neighbour_distance(train: np.ndarray, test: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """(M,) Euclidean distance of each test row to its nearest training row (float64 accumulation
    of ||a||^2 - 2ab + ||b||^2, in chunks to bound memory)."""
    train_t = torch.from_numpy(train).double()
    train_sq = (train_t * train_t).sum(1)
    distances = []
    for start in range(0, len(test), chunk):
        block = torch.from_numpy(test[start:start + chunk]).double()
        squared = (block * block).sum(1, keepdim=True) - 2 * block @ train_t.T + train_sq
        distances.append(squared.min(1).values.clamp_min(0).sqrt())
    return torch.cat(distances).numpy()


def pca_reconstruction_error(train: np.ndarray, test: np.ndarray, variance: float, seed: int = 0) -> np.ndarray:
    """(M,) squared reconstruction error of each test row with the PCA of the training rows."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=variance, svd_solver="full", random_state=seed).fit(train)
    reconstructed = pca.inverse_transform(pca.transform(test))
    return ((test - reconstructed) ** 2).sum(1)


def baseline_names(pca_variance: float) -> tuple[str, str]:
    """Table (model) names: ``pixel-knn`` and ``pixel-pca``, the latter suffixed with the kept
    variance in percent when it is not the default 90 % (``pixel-pca95``), so that a table never
    mixes settings and a rerun with another setting writes its own table."""
    percent = round(pca_variance * 100, 2)
    return "pixel-knn", "pixel-pca" if percent == 90 else f"pixel-pca{percent:g}".replace(".", "-")


def pixel_scores(train: torch.Tensor, test: torch.Tensor, pca_variance: float) -> dict[str, tuple[np.ndarray, float]]:
    """{name: (novelty scores (M,), seconds to fit and score)} of each baseline; images (N, C, H, W)
    on any fixed scale."""
    train_rows = train.flatten(1).double().numpy()
    test_rows = test.flatten(1).double().numpy()
    knn_name, pca_name = baseline_names(pca_variance)
    results = {}
    for name, function in ((knn_name, lambda: nearest_neighbour_distance(train_rows, test_rows)),
                           (pca_name, lambda: pca_reconstruction_error(train_rows, test_rows, pca_variance))):
        started = time.perf_counter()
        scores = function()
        results[name] = (scores, time.perf_counter() - started)
    return results


def run_pixel_floors(dataset: str, data_root: str | None, tag: str | None, classes: list[int], pca_variance: float,
                     results_dir: Path, command: str, folder: str = "",
                     echo: Callable[[str], None] = print) -> dict[str, Path]:
    """Append one row per class and baseline to ``results_dir/<dataset>/<tag>_<baseline>.csv`` (the
    protocol runner's ``results_table_path``; tag default: the dataset's name) and redraw its Markdown
    table; classes already in a table are skipped. Returns {baseline: CSV path}."""
    if not 0 < pca_variance < 1:
        raise UserError(f"--pca-variance {pca_variance} must be between 0 and 1 (e.g. 0.9)")
    splits = load_splits(dataset, data_root, folder=folder)
    label = dataset_label(dataset, data_root, folder)
    tag = tag or label
    check_classes(classes, splits.class_names, tag)
    paths = {name: results_table_path(results_dir, label, tag, name) for name in baseline_names(pca_variance)}

    def done(path: Path, normal_class: int) -> bool:
        return any(int(row["normal_class"]) == normal_class for row in read_rows(path))

    for normal_class in classes:
        if all(done(path, normal_class) for path in paths.values()):
            echo(f"skip class {normal_class}: already in {', '.join(str(p) for p in paths.values())}")
            continue
        data = make_one_class(splits, normal_class)
        for name, (scores, seconds) in pixel_scores(data.train, data.test, pca_variance).items():
            if done(paths[name], normal_class):
                continue
            value = auc(data.test_is_novel.numpy(), scores)
            append_row(paths[name], {
                "dataset": tag, "model": name, "normal_class": normal_class, "seed": 0, "epochs": 0,
                # seconds to fit this baseline on the normal training images and score the test split
                "auc": f"{value:.6f}", "train_seconds": f"{seconds:.1f}", "negatives": "strict one-class",
                "machine": machine_description(), "date": datetime.date.today().isoformat(), "command": command,
            }, splits.class_names, dataset=dataset)
            echo(f"class {normal_class} {name}: AUC {value:.4f}")
    return paths
