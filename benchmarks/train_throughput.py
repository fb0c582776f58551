"""Training and scoring throughput of a registered model on this machine.

Measures, in one run: training images/s (median over repeats), the training step's
achieved GFLOP/s (FLOPs counted with torch.utils.flop_counter on one full step:
classifier, discriminators, mining and generator, forward and backward), a float32
sgemm GFLOP/s baseline, scoring images/s (inference_mode) with its GFLOP/s and fraction of sgemm,
and the process's peak RSS.

    python benchmarks/train_throughput.py                 # full run -> results/speed/throughput.json
    python benchmarks/train_throughput.py --quick         # < 60 s; last line is one JSON object
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from attn_ocgan.config import TrainConfig
from attn_ocgan.data import load_splits, make_one_class
from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config
from attn_ocgan.utils.environment import publish_benchmark
from attn_ocgan.utils.timing import alternating_block_ratio

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ocgan")
    parser.add_argument("--dataset", default=None, help="default: mnist if --data-root holds it, else mnist5k")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--normal-class", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats; finishes in under 60 s")
    parser.add_argument("--out", default=None, help="JSON output (default results/speed/throughput[_MODEL].json; '' to skip)")
    return parser.parse_args(argv)


def median_rate(function, items_per_call: int, repeats: int, calls: int) -> tuple[float, list[float]]:
    function()  # warm-up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        rates.append(items_per_call * calls / (time.perf_counter() - started))
    return statistics.median(rates), rates


def sgemm_gflops(repeats: int, size: int = 1024) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    rate, _ = median_rate(lambda: torch.mm(a, b), 2 * size**3, repeats, calls=10)
    return rate / 1e9


def counted_mining(decoder, classifier, latent, steps, step_size):
    """Stand-in for mining while FLOPs are counted (FlopCounterMode cannot follow
    torch.autograd.grad): each mining step costs one forward of C(De(l)) plus a backward to
    the latent only (no weight gradients, about one more forward), so 2 forwards per step."""
    with torch.no_grad():
        for _ in range(2 * steps):
            classifier(decoder(latent))
    return latent.detach()


def step_time_ratio_vs_vanilla(dataset: str, data, batch, args, model_step) -> dict:
    """Step-time ratio of ``model_step`` to a vanilla OCGAN step on the same batch, timed in
    alternating blocks (vanilla, model, vanilla, model, ...) so that machine load drifting during
    the run hits both alike; the ratio is the median of the per-repeat ratios."""
    config = resolve_model_config("ocgan", dataset, {}, data.in_channels, data.image_size)
    vanilla = create_algorithm("ocgan", create_model("ocgan", config), config, TrainConfig(batch_size=args.batch_size))

    def vanilla_step():
        vanilla.train_step(batch, epoch=10**6)

    timing = alternating_block_ratio(vanilla_step, model_step, args.steps, args.repeats, args.batch_size)
    return {"ocgan_train_img_per_s": timing["reference_img_per_s"],
            "train_img_per_s_alternating_blocks": timing["model_img_per_s"],
            "step_time_ratio_vs_ocgan": timing["ratio"],
            "step_time_ratio_vs_ocgan_repeats": timing["ratios"],
            "step_time_ratio_method": "vanilla and model steps timed in alternating blocks; median of per-repeat ratios"}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.quick:
        args.steps, args.repeats = min(args.steps, 10), min(args.repeats, 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dataset = args.dataset
    if dataset is None:
        dataset = "mnist" if args.data_root and (Path(args.data_root) / "MNIST").is_dir() else "mnist5k"
    data = make_one_class(load_splits(dataset, args.data_root), args.normal_class)
    model_config = resolve_model_config(args.model, dataset, {}, data.in_channels, data.image_size)
    model = create_model(args.model, model_config)
    algorithm = create_algorithm(args.model, model, model_config, TrainConfig(batch_size=args.batch_size))
    batch = data.train[: args.batch_size].contiguous()

    # FLOPs of one complete training step (all networks, forward + backward, mining included).
    late_epoch = 10**6  # past every warm-up and schedule: every term and mining active
    with mock.patch("attn_ocgan.models.ocgan.algorithm.mine_informative_negatives", counted_mining), \
            FlopCounterMode(display=False) as counter:
        algorithm.train_step(batch, epoch=late_epoch)
    step_flops = counter.get_total_flops()

    train_rate, train_rates = median_rate(lambda: algorithm.train_step(batch, epoch=late_epoch), args.batch_size, args.repeats, args.steps)
    early_rate, _ = median_rate(lambda: algorithm.train_step(batch, epoch=0), args.batch_size, args.repeats, args.steps)
    model.eval()
    score_batch = data.test[:1000].contiguous()

    def score():
        with torch.inference_mode():
            model.score(score_batch)

    score_rate, _ = median_rate(score, len(score_batch), args.repeats, calls=2 if args.quick else 5)
    with torch.inference_mode(), FlopCounterMode(display=False) as score_counter:
        model.score(score_batch[:100])
    score_flops_per_image = score_counter.get_total_flops() / 100
    versus_vanilla = {}
    if args.model != "ocgan":
        versus_vanilla = step_time_ratio_vs_vanilla(dataset, data, batch, args,
                                                    lambda: algorithm.train_step(batch, epoch=late_epoch))
    layout_comparison = {}
    if not args.quick:
        # The same model and batch with the default (NCHW) weight layout, measured in this run,
        # so the channels_last speed-up is a ratio on one machine (create_model uses channels_last).
        model.to(memory_format=torch.contiguous_format)
        contiguous_train, _ = median_rate(lambda: algorithm.train_step(batch, epoch=late_epoch), args.batch_size, args.repeats, args.steps)
        model.eval()
        contiguous_score, _ = median_rate(score, len(score_batch), args.repeats, calls=5)
        layout_comparison = {
            "train_img_per_s_contiguous_layout": round(contiguous_train, 1),
            "score_img_per_s_contiguous_layout": round(contiguous_score, 1),
            "channels_last_train_speedup": round(train_rate / contiguous_train, 3),
            "channels_last_score_speedup": round(score_rate / contiguous_score, 3),
        }
    sgemm = sgemm_gflops(args.repeats)
    train_gflops = step_flops / args.batch_size * train_rate / 1e9
    result = {
        "model": args.model,
        "dataset": dataset,
        "batch_size": args.batch_size,
        "train_img_per_s": round(train_rate, 1),
        "train_img_per_s_repeats": [round(r, 1) for r in train_rates],
        "train_img_per_s_before_mining_starts": round(early_rate, 1),
        "train_step_gflop": round(step_flops / 1e9, 4),
        "train_gflops": round(train_gflops, 2),
        "sgemm_gflops": round(sgemm, 2),
        "train_fraction_of_sgemm": round(train_gflops / sgemm, 3),
        "score_img_per_s": round(score_rate, 1),
        "score_mflop_per_image": round(score_flops_per_image / 1e6, 2),
        "score_gflops": round(score_flops_per_image * score_rate / 1e9, 2),
        "score_fraction_of_sgemm": round(score_flops_per_image * score_rate / 1e9 / sgemm, 3),
        **layout_comparison,
        **versus_vanilla,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "epoch_seconds_with_mining": round(len(data.train) / train_rate, 1),
        "epoch_seconds_before_mining": round(len(data.train) / early_rate, 1),
        "n_train_images": len(data.train),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
    }
    out = args.out if args.out is not None else str(REPO / "results" / "speed" / ("throughput.json" if args.model == "ocgan" else f"throughput_{args.model}.json"))
    return publish_benchmark(result, "benchmarks/train_throughput.py", argv, None if args.quick else out)


if __name__ == "__main__":
    main()
