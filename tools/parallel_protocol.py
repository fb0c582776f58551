#!/usr/bin/env python3
"""Run ``attn-ocgan protocol`` as one process per (model, class), at most --jobs at a time.

On a GPU a 32x32 OCGAN step leaves the card mostly idle, so several classes trained side by side
finish several times sooner than one after another; on a many-core CPU the same holds with
``--threads`` set so that jobs x threads <= cores. Every process appends its cell to the same
``<tag>_<model>.csv`` under a file lock, so the tables are those a single sequential run writes;
cells already in the CSV are skipped as usual. Arguments after ``--`` go to every protocol call.
Package code: ``attn_ocgan/protocol/processes.py``.

    python tools/parallel_protocol.py --models ocgan,attn-ocgan --classes 0-9 --jobs 10 --logs logs/cifar -- \\
        --dataset folder --data-root ../shared/data/cifar10-jpeg --tag cifar10-jpeg --epochs 25 --eval-every 0 \\
        --device cuda --threads 1
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attn_ocgan.errors import UserError
from attn_ocgan.protocol.processes import exit_status, protocol_cell_jobs, run_jobs
from attn_ocgan.protocol.runner import parse_int_list


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="attn-ocgan", help="comma-separated registered models")
    parser.add_argument("--classes", default="0-9", help="normal classes, e.g. 0-9 or 1,3")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time")
    parser.add_argument("--logs", default="logs/parallel_protocol", help="folder for one log per process")
    parser.add_argument("protocol_args", nargs=argparse.REMAINDER, help="-- then arguments for every 'attn-ocgan protocol'")
    args = parser.parse_args(argv)
    if args.protocol_args[:1] == ["--"]:
        args.protocol_args = args.protocol_args[1:]
    if args.jobs < 1:
        raise SystemExit(f"error: --jobs must be >= 1, got {args.jobs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        jobs = protocol_cell_jobs(models, parse_int_list(args.classes, "classes"), args.protocol_args, Path(args.logs))
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    return exit_status(run_jobs(jobs, args.jobs, Path.cwd()))


if __name__ == "__main__":
    sys.exit(main())
