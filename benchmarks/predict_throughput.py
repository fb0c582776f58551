"""End-to-end throughput of ``attn-ocgan predict``: image files in, scores.csv out.

Writes ``--images`` test images of a dataset as files (PNG, or JPEG for colour data) into a temporary
folder, then times, in one process and with the same model: the whole predict path (find the files,
decode and size them, score, write scores.csv) and the model's scoring alone on the same decoded
tensor. Reports images/s of both (medians over repeats), the share of predict's time spent outside
the model, and the model's GFLOP/s as a fraction of this machine's sgemm. The model is untrained
(its cost does not depend on its weights).

    python benchmarks/predict_throughput.py                  # -> results/speed/predict_throughput[_MODEL].json
    python benchmarks/predict_throughput.py --quick          # < 60 s, prints the JSON only
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from attn_ocgan.config import DataConfig, RunConfig
from attn_ocgan.data import load_splits
from attn_ocgan.engine.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from attn_ocgan.engine.predict import collect_inputs, prepare_images, score_images, write_scores_csv
from attn_ocgan.registry import create_model, resolve_model_config
from attn_ocgan.utils.environment import publish_benchmark
from train_throughput import sgemm_gflops  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ocgan")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats = min(args.images, 200), min(args.repeats, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    splits = load_splits(args.dataset, args.data_root)
    images = splits.test_images[: args.images]
    config = RunConfig(model=args.model, data=DataConfig(name=args.dataset, root=args.data_root))
    model_config = resolve_model_config(args.model, args.dataset, {}, int(images.shape[1]), int(images.shape[-1]))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        suffix = "png" if images.shape[1] == 1 else "jpg"
        for index, image in enumerate(images):
            array = image.permute(1, 2, 0).squeeze(-1).numpy()
            Image.fromarray(array).save(folder / f"{index:05d}.{suffix}", quality=95)
        checkpoint = folder / "model.pt"
        save_checkpoint(checkpoint, config, create_model(args.model, model_config), None, 0)
        _, model = model_from_checkpoint(read_checkpoint(checkpoint))

        def predict_once() -> dict:
            times = {}
            started = time.perf_counter()
            prepared = prepare_images(collect_inputs([str(folder)]), model.config.in_channels, model.config.image_size,
                                      args.dataset, progress=False)
            times["decode_s"] = time.perf_counter() - started
            columns = score_images(model, prepared.images, progress=False)
            times["score_s"] = time.perf_counter() - started - times["decode_s"]
            write_scores_csv(folder / "out" / "scores.csv", prepared, columns, 0.0)
            times["total_s"] = time.perf_counter() - started
            return times

        predict_once()  # warm-up
        runs = [predict_once() for _ in range(args.repeats)]
        prepared = prepare_images(collect_inputs([str(folder)]), model.config.in_channels, model.config.image_size,
                                  args.dataset, progress=False)
        model_times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            score_images(model, prepared.images, progress=False)
            model_times.append(time.perf_counter() - started)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.score(prepared.images[:100].float() / 127.5 - 1)
    flops_per_image = counter.get_total_flops() / 100
    total = statistics.median(r["total_s"] for r in runs)
    model_only = statistics.median(model_times)
    sgemm = sgemm_gflops(args.repeats)
    result = {
        "model": args.model, "dataset": args.dataset, "images": len(images), "file_format": suffix,
        "predict_img_per_s": round(len(images) / total, 1),
        "model_only_img_per_s": round(len(images) / model_only, 1),
        "share_of_predict_outside_the_model": round(1 - model_only / total, 3),
        "median_seconds": {key: round(statistics.median(r[key] for r in runs), 3) for key in ("decode_s", "score_s", "total_s")},
        "score_mflop_per_image": round(flops_per_image / 1e6, 2),
        "model_gflops": round(flops_per_image * len(images) / model_only / 1e9, 2),
        "sgemm_gflops": round(sgemm, 2),
        "model_fraction_of_sgemm": round(flops_per_image * len(images) / model_only / 1e9 / sgemm, 3),
        "threads": torch.get_num_threads(), "repeats": args.repeats,
    }
    suffix_name = "" if args.model == "ocgan" else f"_{args.model}"
    out = args.out if args.out is not None else str(REPO / "results" / "speed" / f"predict_throughput{suffix_name}.json")
    return publish_benchmark(result, "benchmarks/predict_throughput.py", argv, None if args.quick else out)


if __name__ == "__main__":
    main()
