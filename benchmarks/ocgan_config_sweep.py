"""Per-epoch test AUC and training speed of OCGAN variants on one MNIST class (for choosing defaults).

Test AUC per epoch is printed for *monitoring the effect of a hyper-parameter*, as in the
model README's evidence table; the protocol itself always reports the last epoch.

    python benchmarks/ocgan_config_sweep.py --data-root ../shared/data --normal-class 8 \
        --epochs 10 --variant '{}' --variant '{"latent_channels": 32}' --variant '{"mining_steps": 0}'
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attn_ocgan.config import TrainConfig  # noqa: E402
from attn_ocgan.data import load_splits, make_one_class  # noqa: E402
from attn_ocgan.engine.evaluation import auc, compute_scores  # noqa: E402
from attn_ocgan.engine.trainer import _batches  # noqa: E402
from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--normal-class", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", default=None, help="JSON dict of model args (repeatable)")
    args = parser.parse_args(argv)
    data = make_one_class(load_splits(args.dataset, args.data_root), args.normal_class)
    for variant in args.variant or ["{}"]:
        overrides = json.loads(variant)
        torch.manual_seed(args.seed)
        config = resolve_model_config("ocgan", args.dataset, overrides, data.in_channels, data.image_size)
        model = create_model("ocgan", config)
        algorithm = create_algorithm("ocgan", model, config, TrainConfig(batch_size=args.batch_size))
        for epoch in range(args.epochs):
            started, n_images = time.perf_counter(), 0
            for batch in _batches(len(data.train), args.batch_size):
                algorithm.train_step(data.train[batch], epoch)
                n_images += len(batch)
            rate = n_images / (time.perf_counter() - started)
            value = auc(data.test_is_novel.numpy(), compute_scores(model, data.test))
            print(json.dumps({"variant": overrides, "class": args.normal_class, "epoch": epoch + 1,
                              "train_img_per_s": round(rate), "test_auc": round(value, 4)}), flush=True)


if __name__ == "__main__":
    main()
