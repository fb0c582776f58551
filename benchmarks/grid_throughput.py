"""Protocol grid throughput on this machine: the same grid of cells run one at a time and two at a
time on a local Ray instance (``attn-ocgan protocol --jobs 1`` vs ``--jobs 2``, one thread per cell).

Each block trains the grid afresh (its own results and run folders) with each setting, the settings
alternating so that load on a shared machine hits them alike; reports cells per hour (median over
blocks) and the ratio. Ray's start-up is inside the measured time, as a user sees it.

    python benchmarks/grid_throughput.py --cells 4 --epochs 2 --blocks 2   # -> results/speed/grid_throughput.json
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from attn_ocgan.config import DataConfig, RunConfig, TrainConfig
from attn_ocgan.protocol.distributed import Resources, run_protocol_on_ray
from attn_ocgan.utils.environment import publish_benchmark

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ocgan")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--cells", type=int, default=4, help="classes 0..cells-1, seed 0")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--jobs", default="1,2", help="settings compared, e.g. 1,2")
    parser.add_argument("--out", default=str(REPO / "results" / "speed" / "grid_throughput.json"))
    args = parser.parse_args(argv)
    config = RunConfig(model=args.model, data=DataConfig(name=args.dataset, root=args.data_root),
                       train=TrainConfig(epochs=args.epochs, eval_every=0, threads=1, device="cpu"))
    settings = [int(jobs) for jobs in args.jobs.split(",")]
    classes = list(range(args.cells))
    hours: dict[int, list[float]] = {jobs: [] for jobs in settings}
    for block in range(args.blocks):
        for jobs in settings:
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                run_protocol_on_ray(config, classes, [0], Path(folder) / "results", Path(folder) / "runs",
                                    "benchmark", Resources(jobs=jobs), progress=False, echo=lambda _: None)
                hours[jobs].append((time.perf_counter() - started) / 3600)
            print(f"block {block + 1}, --jobs {jobs}: {len(classes) / hours[jobs][-1]:.1f} cells/hour", flush=True)
    per_hour = {jobs: len(classes) / statistics.median(values) for jobs, values in hours.items()}
    reference = settings[0]
    result = {"model": args.model, "dataset": args.dataset, "cells": len(classes), "epochs": args.epochs,
              "blocks": args.blocks, "threads_per_cell": 1,
              "cells_per_hour": {f"jobs {jobs}": round(value, 1) for jobs, value in per_hour.items()},
              f"ratio_to_jobs_{reference}": {f"jobs {jobs}": round(value / per_hour[reference], 2) for jobs, value in per_hour.items()},
              "seconds_per_block": {f"jobs {jobs}": [round(h * 3600, 1) for h in values] for jobs, values in hours.items()}}
    return publish_benchmark(result, "benchmarks/grid_throughput.py", argv, args.out)


if __name__ == "__main__":
    main()
