"""One process on every thread, or one single-threaded process per core? Total training throughput of both.

The protocol runner trains one cell at a time; ``tools/parallel_protocol.py --jobs N --threads 1``
trains N cells at once. Which finishes a table sooner on a small CPU depends on how well one
training step scales over threads, so this measures it on this machine, in one run:

- ``single``: one worker process with ``--processes`` torch threads trains alone;
- ``parallel``: ``--processes`` worker processes with one thread each train at the same time
  (started together); their rates add up.

The two are timed in alternating blocks (single, parallel, single, ...) so that load drifting on
a shared machine hits both alike; the speed-up is the median of the per-block ratios
parallel / single. Every worker keeps its own model (same seed) and runs full training steps of
the named model with the dataset's preset (every schedule active: mining, masked GAN) on a fixed
random batch of the dataset's shape: a step's cost depends on shapes, not on pixel values.

    python benchmarks/process_parallelism.py --model attn-ocgan --dataset folder --channels 3   # CIFAR-10 cells
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Spawned workers import this file by its module name (also when a test loaded it from its path).
sys.path.insert(0, str(Path(__file__).resolve().parent))

LATE_EPOCH = 10**6  # past every warm-up and schedule: every term active


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="attn-ocgan")
    parser.add_argument("--dataset", default="folder", help="dataset whose preset the model takes (default folder: CIFAR-10)")
    parser.add_argument("--channels", type=int, default=3, help="image channels of that dataset (3 for CIFAR-10, 1 for MNIST)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2, help="cores to compare over (default 2)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="block pairs (single, parallel)")
    parser.add_argument("--out", default=None, help="JSON output (default results/process_parallelism_MODEL.json; '' to skip)")
    args = parser.parse_args(argv)
    for name in ("channels", "size", "batch_size", "processes", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def worker(connection, threads: int, model_name: str, dataset: str, channels: int, size: int, batch_size: int) -> None:
    """Builds one model, then answers each ``steps`` message with the seconds those training steps took."""
    import torch

    from attn_ocgan.config import TrainConfig
    from attn_ocgan.registry import create_algorithm, create_model, resolve_model_config

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = resolve_model_config(model_name, dataset, {}, channels, size)
    algorithm = create_algorithm(model_name, create_model(model_name, config), config, TrainConfig(batch_size=batch_size))
    batch = torch.rand(batch_size, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for _ in range(3):  # warm-up: the first steps pay for allocations and kernel selection
        algorithm.train_step(batch, epoch=LATE_EPOCH)
    connection.send("ready")
    while (steps := connection.recv()) is not None:
        started = time.perf_counter()
        for _ in range(steps):
            algorithm.train_step(batch, epoch=LATE_EPOCH)
        connection.send(time.perf_counter() - started)


def start_workers(context, count: int, threads: int, args) -> list:
    connections = []
    for _ in range(count):
        parent, child = context.Pipe()
        context.Process(target=worker, daemon=True,
                        args=(child, threads, args.model, args.dataset, args.channels, args.size, args.batch_size)).start()
        child.close()  # only the worker holds its end: if it dies, recv() below raises instead of waiting forever
        connections.append(parent)
    for connection in connections:
        try:
            connection.recv()
        except EOFError:
            raise SystemExit("error: a benchmark worker exited while building its model (its traceback is above)") from None
    return connections


def timed_block(connections, steps: int) -> list[float]:
    """Seconds each worker took for ``steps`` steps, all started at once."""
    for connection in connections:
        connection.send(steps)
    return [connection.recv() for connection in connections]


def main(argv=None) -> dict:
    args = parse_args(argv)
    from attn_ocgan.utils.environment import machine_description, script_command
    from attn_ocgan.utils.io import atomic_write_json
    from attn_ocgan.errors import UserError
    from attn_ocgan.registry import resolve_model_config

    try:  # bad --model/--dataset: the registry's one-line error here, before any worker starts
        resolve_model_config(args.model, args.dataset, {}, args.channels, args.size)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None

    context = mp.get_context("spawn")
    single = start_workers(context, 1, args.processes, args)
    parallel = start_workers(context, args.processes, 1, args)
    images = args.batch_size * args.steps
    single_rates, parallel_rates = [], []
    for _ in range(args.repeats):
        single_rates.append(images / timed_block(single, args.steps)[0])
        parallel_rates.append(sum(images / seconds for seconds in timed_block(parallel, args.steps)))
    for connection in single + parallel:
        connection.send(None)
    ratios = [p / s for p, s in zip(parallel_rates, single_rates)]
    result = {
        "model": args.model, "dataset_preset": args.dataset, "image_shape": [args.channels, args.size, args.size],
        "batch_size": args.batch_size, "processes": args.processes, "steps_per_block": args.steps,
        "single_process_threads": args.processes,
        "single_process_img_per_s": round(statistics.median(single_rates), 1),
        "parallel_processes_total_img_per_s": round(statistics.median(parallel_rates), 1),
        "parallel_speedup": round(statistics.median(ratios), 3),
        "parallel_speedup_repeats": [round(r, 3) for r in ratios],
        "method": "single (1 process x N threads) and parallel (N processes x 1 thread) timed in alternating blocks; "
                  "median of per-block ratios of total img/s",
        "machine": machine_description(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": script_command("benchmarks/process_parallelism.py", argv),
    }
    out = args.out if args.out is not None else str(REPO / "results" / f"process_parallelism_{args.model}.json")
    if out:
        atomic_write_json(out, result)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
