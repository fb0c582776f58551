"""A one-line description of the machine, recorded beside every timing and result row."""
from __future__ import annotations

import platform
import shlex
import sys
from pathlib import Path


def cpu_model_name() -> str:
    """The CPU's model name from /proc/cpuinfo where it exists (Linux), else platform's guess."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown cpu"


def machine_description(device=None) -> str:
    """E.g. 'x86_64 AMD EPYC, 2 threads, torch 2.14.1+cu130, cpu' (timings differ a lot between
    CPUs); the last part names the GPU when ``device`` is a CUDA device."""
    import torch

    where = describe_device(torch.device(device)) if device is not None else "cpu"
    return f"{platform.machine()} {cpu_model_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {where}"


def script_command(script: str, argv: list[str] | None = None) -> str:
    """The re-runnable command line recorded beside a script's results, e.g.
    'python benchmarks/train_throughput.py --quick' (``argv`` defaults to sys.argv[1:])."""
    return "python " + shlex.join([script, *(argv if argv is not None else sys.argv[1:])])


def describe_device(device) -> str:
    """'cpu' or the GPU's name, e.g. 'cuda NVIDIA H100 80GB HBM3'."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return "cpu"


def publish_benchmark(result: dict, script: str, argv: list[str] | None, out: str | None) -> dict:
    """A benchmark's last step: ``result`` with the machine, the date and the re-runnable command added,
    written atomically to ``out`` as JSON (unless ``out`` is empty) and printed as one JSON line."""
    import datetime
    import json

    from .io import atomic_write_json

    result = {**result, "machine": machine_description(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": script_command(script, argv)}
    if out:
        atomic_write_json(out, result)
    print(json.dumps(result))
    return result
