"""anomalib's Ganomaly and ours on the same one-class split, in one run: test AUC and seconds per epoch.

anomalib is NOT a dependency of attn-ocgan: run this with the benchmark's own environment,

    make benchmark-anomalib            # creates .venv-anomalib (anomalib 2.7.0 on top of .venv), then runs:
    .venv-anomalib/bin/python benchmarks/anomalib_side_by_side.py --data-root ../shared/data --normal-class 0 --epochs 3

Both models see the same images (our protocol-2 split, 32x32; details in
``attn_ocgan/studies/anomalib_side_by_side.py``). Writes ``results/speed/anomalib_side_by_side.json``
with the command, machine and date.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from attn_ocgan.config import DataConfig
from attn_ocgan.studies.anomalib_side_by_side import run_side_by_side
from attn_ocgan.utils.environment import script_command

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--normal-class", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="Both models (anomalib's default is 32).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "results" / "speed" / "anomalib_side_by_side.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_config = DataConfig(name=args.dataset, root=args.data_root, normal_class=args.normal_class)
    payload = run_side_by_side(data_config, args.epochs, args.batch_size, args.seed, Path(args.out),
                               script_command("benchmarks/anomalib_side_by_side.py", argv),
                               echo=lambda line: print(line, flush=True))
    print(json.dumps({k: payload[k] for k in ("anomalib_ganomaly", "attn_ocgan_ganomaly")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
