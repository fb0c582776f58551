"""Raw-pixel floors on protocol 2: what a GAN has to beat to have learnt anything.

Two training-free baselines per normal class, fitted on the normal *training* images only and
scored on the whole test split (novel = positive):

- ``pixel-knn``: Euclidean distance to the nearest normal training image;
- ``pixel-pca``: reconstruction error after projecting on the principal components that keep
  ``--pca-variance`` of the normal training images' variance (``pixel-pca95`` etc. for a
  setting other than the default 0.9).

The rows go to ``results/<tag>_pixel-knn.csv`` and ``results/<tag>_pixel-pca.csv`` in the
protocol runner's format, so ``attn-ocgan compare`` shows them beside the models.

    python benchmarks/pixel_baselines.py --dataset mnist --data-root ../shared/data
    python benchmarks/pixel_baselines.py --dataset folder --data-root ../shared/data/cifar10-jpeg --tag cifar10-jpeg
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attn_ocgan.data import load_splits, make_one_class  # noqa: E402
from attn_ocgan.utils.environment import machine_description, script_command  # noqa: E402
from attn_ocgan.engine.evaluation import auc  # noqa: E402
from attn_ocgan.protocol.runner import check_classes, parse_int_list  # noqa: E402
from attn_ocgan.protocol.tables import append_row, read_rows  # noqa: E402
from attn_ocgan.errors import UserError  # noqa: E402


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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", help="mnist, cifar10, folder, ... (as attn-ocgan protocol)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--tag", default=None, help="table tag (default: the dataset name); e.g. cifar10-jpeg")
    parser.add_argument("--classes", default="0-9")
    parser.add_argument("--pca-variance", type=float, default=0.9, help="share of variance the PCA keeps (0-1)")
    parser.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "results"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not 0 < args.pca_variance < 1:
        raise SystemExit(f"error: --pca-variance {args.pca_variance} must be between 0 and 1 (e.g. 0.9)")
    tag = args.tag or args.dataset
    command = script_command("benchmarks/pixel_baselines.py", argv)
    try:
        splits = load_splits(args.dataset, args.data_root)
        classes = parse_int_list(args.classes, "classes")
        check_classes(classes, splits.class_names, tag)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    results = Path(args.results)
    paths = {name: results / f"{tag}_{name}.csv" for name in baseline_names(args.pca_variance)}
    for normal_class in tqdm(classes, desc="classes"):
        if all(any(int(r["normal_class"]) == normal_class for r in read_rows(p)) for p in paths.values()):
            tqdm.write(f"skip class {normal_class}: already in {', '.join(str(p) for p in paths.values())}")
            continue
        data = make_one_class(splits, normal_class)
        for name, (scores, seconds) in pixel_scores(data.train, data.test, args.pca_variance).items():
            if any(int(r["normal_class"]) == normal_class for r in read_rows(paths[name])):
                continue
            value = auc(data.test_is_novel.numpy(), scores)
            append_row(paths[name], {
                "dataset": tag, "model": name, "normal_class": normal_class, "seed": 0, "epochs": 0,
                # seconds to fit this baseline on the normal training images and score the test split
                "auc": f"{value:.6f}", "train_seconds": f"{seconds:.1f}", "negatives": "strict one-class",
                "machine": machine_description(), "date": datetime.date.today().isoformat(), "command": command,
            }, splits.class_names, dataset=args.dataset)
            tqdm.write(f"class {normal_class} {name}: AUC {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
