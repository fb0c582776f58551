"""Scoring speed of registered models on the same images, measured in one run (ratios, not absolutes).

Each model is built untrained at its dataset preset (its scoring cost does not depend on its
weights: AnoGAN's latent search runs a fixed number of steps) and scores the same test images;
blocks of the models alternate so that load on a shared machine hits them alike. Reports images/s
per model (median over blocks) and each model's speed relative to the last one.

    python benchmarks/scoring_speed.py --models fanogan,anogan --images 50      # -> results/speed/scoring_speed.json
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from attn_ocgan.data import load_splits, make_one_class
from attn_ocgan.engine.evaluation import compute_scores
from attn_ocgan.registry import create_model, resolve_model_config
from attn_ocgan.utils.environment import publish_benchmark

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="fanogan,anogan")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "results" / "speed" / "scoring_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = make_one_class(load_splits(args.dataset, args.data_root), 0)
    images = data.test[: args.images]
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    models = {name: create_model(name, resolve_model_config(name, args.dataset, {}, data.in_channels, data.image_size)).eval()
              for name in names}
    for model in models.values():
        compute_scores(model, images[:2])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.blocks):
        for name, model in models.items():
            started = time.perf_counter()
            compute_scores(model, images)
            rates[name].append(len(images) / (time.perf_counter() - started))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    reference = names[-1]
    result = {"dataset": args.dataset, "images": len(images), "blocks": args.blocks, "threads": args.threads,
              "img_per_s": {name: round(value, 2) for name, value in medians.items()},
              f"speed_relative_to_{reference}": {name: round(value / medians[reference], 1) for name, value in medians.items()},
              "img_per_s_per_block": {name: [round(v, 2) for v in values] for name, values in rates.items()}}
    return publish_benchmark(result, "benchmarks/scoring_speed.py", argv, args.out)


if __name__ == "__main__":
    main()
