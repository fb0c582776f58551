"""The protocol grid on Ray: each (model, class, seed) cell is a Ray task with declared resources.

The driver (this process) plans the grid with every check that can fail (``plan_protocol``),
submits the missing cells, and is the only writer of the result tables: rows are appended as cells
finish. A cell whose worker or node dies is retried by Ray (``max_retries``) and resumes from its
last checkpoint when the run folders are on storage the workers share; a cell that fails for a
real error (diverged, a bad option) is recorded with its error line and the others go on; Ctrl-C
cancels what is still running and keeps every finished row. ``--jobs N`` starts a local Ray
instance for the run (loopback only, no dashboard); ``--ray-address`` joins a running cluster.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from ..config import RunConfig
from ..engine.run_folder import CELL_LOG, RunFolderInUse, run_folder_lock
from ..errors import UserError
from .runner import Cell, Grid, finish_cell, is_done, plan_protocol, raise_for_failures, record_cell_failure, record_row

INSTALL_HINT = "Ray is not installed; install it with: pip install 'attn-ocgan[distributed]' (or pip install 'ray[tune]')"
LOCAL_ENVIRONMENT = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # a local instance: every Ray server on 127.0.0.1, not the outward address
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report
}
IN_USE_WAIT_SECONDS = 120.0  # a retried cell waits this long for the killed attempt's folder lock to be released


@dataclass(frozen=True)
class Resources:
    """What one cell asks of Ray, and where Ray runs."""
    jobs: int | None = None  # --jobs: start a local Ray instance with room for this many cells
    address: str | None = None  # --ray-address: join this cluster ('auto': the one started on this machine)
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0  # fractions share one GPU between several cells (e.g. 0.25: four 32x32 cells)
    max_retries: int = 2  # attempts after a worker or node died; real errors are never retried

    @property
    def distributed(self) -> bool:
        return self.jobs is not None or self.address is not None

    def check(self) -> None:
        """One-line UserError for settings Ray would refuse, before Ray is started."""
        if self.jobs is not None and self.address is not None:
            raise UserError("--jobs starts a local Ray instance and --ray-address joins a running one; give one of them")
        if self.jobs is not None and self.jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {self.jobs}")
        if self.cpus_per_cell <= 0:
            raise UserError(f"--cpus-per-cell must be above 0, got {self.cpus_per_cell:g}")
        if self.gpus_per_cell < 0 or (self.gpus_per_cell > 1 and self.gpus_per_cell != int(self.gpus_per_cell)):
            raise UserError(f"--gpus-per-cell must be a fraction of one GPU or a whole number, got {self.gpus_per_cell:g}")
        if self.max_retries < 0:
            raise UserError(f"--max-retries must be 0 or more, got {self.max_retries}")
        if not self.distributed and (self.cpus_per_cell != 1.0 or self.gpus_per_cell):
            raise UserError("--cpus-per-cell and --gpus-per-cell are Ray settings; add --jobs N or --ray-address ADDR")

    def check_local_gpus(self) -> None:
        """A local instance (--jobs) offers this machine's GPUs only: asking cells for a GPU where there
        is none would leave them waiting for ever."""
        import torch

        if self.jobs is not None and self.gpus_per_cell and not torch.cuda.is_available():
            raise UserError("--gpus-per-cell: this machine has no CUDA GPU for the local Ray instance (--jobs); "
                            "drop --gpus-per-cell, or join a cluster with GPUs (--ray-address)")


def import_ray(local: bool = False):
    """The ``ray`` module, or a one-line UserError that says how to install it. ``local``: Ray will
    start an instance on this machine, so its servers listen on 127.0.0.1 only (``LOCAL_ENVIRONMENT``,
    read by Ray when it is first imported; a driver that joins a cluster keeps its outward address)."""
    if local and "ray" not in sys.modules:
        for key, value in LOCAL_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


@contextmanager
def ray_session(resources: Resources) -> Iterator[object]:
    """Ray connected for the block: a local instance started for it (``jobs``; shut down after) or the
    cluster at ``address`` (left running)."""
    ray = import_ray(local=resources.address is None)
    if ray.is_initialized():  # e.g. a test's cluster, or a caller that connected already
        yield ray
        return
    if resources.address is not None:
        try:
            ray.init(address=resources.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise UserError(f"cannot join the Ray cluster at --ray-address {resources.address}: {error}; "
                            "start it with 'ray start --head' or check the address") from None
    else:
        import torch
        gpus = torch.cuda.device_count() if resources.gpus_per_cell else 0
        # "local": a new instance for this run, even when another one runs on this machine
        ray.init(address="local", num_cpus=max(1, round(resources.jobs * resources.cpus_per_cell)), num_gpus=gpus,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        if resources.address is None:
            ray.shutdown()


def _cell_for_worker(cell: Cell, resources: Resources) -> Cell:
    """The cell as a worker runs it: torch threads = its CPUs, and a GPU when it was given one."""
    train = cell.config.train
    threads = train.threads or max(1, int(resources.cpus_per_cell))
    device = "cuda" if resources.gpus_per_cell and train.device in ("auto", "cpu") else train.device
    return replace(cell, config=replace(cell.config, train=replace(train, threads=threads, device=device)))


class CellLog:
    """A worker's lines for one cell, appended to ``RUN/cell.log`` with the time and the node. Lines
    before the first checkpoint are held back (the trainer owns a fresh folder until then)."""

    def __init__(self, path: Path):
        self.path, self.held = Path(path), []

    def write(self, line: str) -> None:
        self.held.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {os.uname().nodename} pid {os.getpid()}: {line.strip()}\n")
        if (self.path.parent / "checkpoints").is_dir():
            with open(self.path, "a") as handle:
                handle.writelines(self.held)
            self.held = []


def execute_cell(cell: Cell, wait_seconds: float = IN_USE_WAIT_SECONDS) -> dict:
    """A cell in a Ray worker: trains or resumes it in its locked run folder and returns
    ``{"row", "metrics"}``, ``{"failed": reason}`` for a real failure or ``{"skipped": reason}``.
    A retried attempt waits up to ``wait_seconds`` for the lock of an attempt that was killed."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with run_folder_lock(cell.run_dir):
                if is_done(cell):
                    return {"skipped": "finished by another runner"}
                log = CellLog(cell.run_dir / CELL_LOG)
                row, metrics = finish_cell(cell, progress=False, echo=log.write, on_epoch=lambda report: log.write(report["message"]))
                return {"row": row, "metrics": metrics}
        except RunFolderInUse as error:
            if time.monotonic() > deadline:
                return {"skipped": str(error)}
            time.sleep(1.0)
        except UserError as error:  # CellFailed (diverged, non-finite scores) and bad settings alike
            return {"failed": str(error)}


def _error_line(error: BaseException) -> str:
    """The last line of a Ray task error (Ray prefixes the worker's traceback)."""
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def run_protocol_on_ray(base: RunConfig, classes: list[int], seeds: list[int], results_dir: Path, runs_dir: Path,
                        command: str, resources: Resources, tag: str | None = None, progress: bool = True,
                        echo=print) -> Path:
    """``run_protocol`` with each missing cell a Ray task; returns the CSV path. Everything that can be
    checked is checked before Ray starts and before any task is submitted."""
    resources.check()
    resources.check_local_gpus()
    import_ray(local=resources.address is None)
    grid, _ = plan_protocol(base, classes, seeds, results_dir, runs_dir, command, tag, echo)
    if not grid.cells:
        return grid.csv_path
    with ray_session(resources) as ray, _ctrl_c_between_waits() as interrupted:
        run_grid(ray, grid, resources, progress, echo, interrupted)
    return grid.csv_path


@contextmanager
def _ctrl_c_between_waits() -> Iterator[threading.Event]:
    """An event set by SIGINT while the grid runs (main thread only). Ray's blocking calls check for
    signals themselves and can drop the KeyboardInterrupt of a Ctrl-C that arrives inside them (seen
    on a loaded machine: the grid went on to the end); ``run_grid`` raises it itself between waits."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_grid(ray, grid: Grid, resources: Resources, progress: bool = True, echo=print,
             interrupted: threading.Event | None = None) -> None:
    """Submit the grid's cells, record rows and failures as they arrive (this process is the only
    writer), cancel the rest on Ctrl-C (a KeyboardInterrupt, or ``interrupted`` set). Raises UserError
    naming the failed cells at the end."""
    task = ray.remote(execute_cell).options(num_cpus=resources.cpus_per_cell, num_gpus=resources.gpus_per_cell,
                                            max_retries=resources.max_retries, retry_exceptions=False)
    pending = {task.remote(_cell_for_worker(cell, resources)): cell for cell in grid.cells}
    slots = _cluster_slots(ray, resources)
    failures: list[Cell] = []
    bar = tqdm(total=len(pending), desc="cells", unit="cell", disable=not progress)
    try:
        while pending:
            if interrupted is not None and interrupted.is_set():
                raise KeyboardInterrupt
            bar.set_postfix(running=min(slots, len(pending)), failed=len(failures), refresh=False)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for reference in ready:
                cell = pending.pop(reference)
                try:
                    outcome = ray.get(reference)
                except Exception as error:  # the worker died more than max_retries times, or a bug
                    outcome = {"failed": f"{type(error).__name__}: {_error_line(error)}"}
                if "row" in outcome:
                    record_row(grid, cell, outcome["row"], outcome["metrics"], echo)
                    bar.write(f"done {cell.label}: AUC {float(outcome['row']['auc']):.4f}")
                elif "failed" in outcome:
                    failures.append(cell)
                    record_cell_failure(grid, cell, outcome["failed"])
                    bar.write(f"FAILED {cell.label}: {outcome['failed']}")
                else:
                    bar.write(f"skip {cell.label}: {outcome['skipped']}")
                bar.update(1)
    except KeyboardInterrupt:
        for reference in pending:
            ray.cancel(reference, force=True)
        bar.close()
        echo(f"stopped: {len(pending)} cell(s) cancelled; every finished row is in {grid.csv_path}")
        raise
    bar.close()
    raise_for_failures(grid, failures)


def _cluster_slots(ray, resources: Resources) -> int:
    """How many cells the cluster can run at once (for the progress bar's 'running')."""
    total = ray.cluster_resources()
    slots = int(total.get("CPU", 0) // resources.cpus_per_cell)
    if resources.gpus_per_cell:
        slots = min(slots, int(total.get("GPU", 0) // resources.gpus_per_cell))
    return max(slots, 1)
