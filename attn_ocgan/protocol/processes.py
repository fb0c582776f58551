"""Run independent commands (e.g. one ``attn-ocgan protocol`` cell each), at most ``jobs`` at a time.

Used by ``attn-ocgan report ablation --run`` (one protocol process per setting and class): each
command writes its own log; a failure is reported and the others go on. A grid of one protocol
table runs on Ray instead (``distributed.py``: ``attn-ocgan protocol --jobs N``).
"""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path



@dataclass(frozen=True)
class Job:
    label: str  # what progress lines and the failure list call it
    command: list[str]
    log: Path


def run_jobs(jobs: list[Job], max_running: int, cwd: Path, on_done: Callable[[Job, int], None] | None = None,
             poll_seconds: float = 1.0) -> list[Job]:
    """Start ``jobs`` in order, ``max_running`` at a time; return the ones that exited non-zero.
    ``on_done(job, returncode)`` runs in this process after each job ends."""
    if max_running < 1:
        raise ValueError(f"max_running must be >= 1, got {max_running}")
    waiting, running, failed = list(jobs), {}, []
    while waiting or running:
        while waiting and len(running) < max_running:
            job = waiting.pop(0)
            job.log.parent.mkdir(parents=True, exist_ok=True)
            with open(job.log, "w") as log:
                running[subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)] = (job, time.time())
            print(f"start {job.label} (log {job.log})", flush=True)
        time.sleep(poll_seconds)
        for process in [p for p in running if p.poll() is not None]:
            job, started = running.pop(process)
            print(f"{'done' if process.returncode == 0 else 'FAILED'} {job.label}: exit {process.returncode} "
                  f"after {time.time() - started:.0f} s", flush=True)
            if process.returncode != 0:
                failed.append(job)
            if on_done is not None:
                on_done(job, process.returncode)
    return failed


def protocol_command(*arguments: str) -> list[str]:
    """``attn-ocgan protocol ARGUMENTS`` run by this interpreter (no console script needed)."""
    return [sys.executable, "-m", "attn_ocgan.cli", "protocol", *arguments]


def exit_status(failed: list[Job]) -> int:
    """1 after naming the failed jobs on stderr, 0 when none failed."""
    if failed:
        print("failed cells (see their logs): " + ", ".join(job.label for job in failed), file=sys.stderr)
        return 1
    return 0
