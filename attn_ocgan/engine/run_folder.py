"""Run folders: recognised before anything is removed, locked while in use, replaced without loss.

* ``MARKER`` is written into every run folder the trainer creates. ``--overwrite`` replaces only a
  folder that holds nothing but what this tool writes (``OWN_NAMES``), and it moves the old run's
  files aside (``<name>.replaced``) until the new run has written its first checkpoint.
* ``run_folder_lock`` holds an exclusive ``flock`` on ``<folder>/.in-use`` while a process trains
  or evaluates in it. The kernel drops the lock when the process dies (even by kill -9), so a
  stale lock never blocks anyone; a live one makes a second trainer stop (``RunFolderInUse``) and a
  second protocol runner skip the cell.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

MARKER = ".attn-ocgan-run"
LOCK_NAME = ".in-use"
REPLACED_SUFFIX = ".replaced"
# Everything the trainer, evaluation and the studies write into a run folder.
CELL_LOG = "cell.log"  # a protocol cell's epoch lines when a Ray worker trains it (protocol/distributed.py)
CELL_RESULT = "cell_result.json"  # a finished protocol cell's row and metrics, until its table has them (protocol/runner.py)
OWN_NAMES = (MARKER, LOCK_NAME, "config.yaml", "checkpoints", "events.out.tfevents.*", "validation.jsonl", "metrics.json",
             "*.png", ".*.tmp", CELL_LOG, CELL_RESULT)
OWN_CHECKPOINT_NAMES = ("*.pt", "*.onnx", "*.pt.json", "*.onnx.json", ".*.tmp")  # checkpoints and exports beside them


class RunFolderInUse(UserError):
    """Another live process holds the run folder's lock."""


def foreign_entries(folder: Path) -> list[str]:
    """Names in ``folder`` that this tool does not write (checkpoints/ may hold only checkpoints)."""
    foreign = [p.name for p in sorted(folder.iterdir()) if not any(fnmatch.fnmatch(p.name, own) for own in OWN_NAMES)]
    checkpoints = folder / "checkpoints"
    if checkpoints.is_dir():
        foreign += [f"checkpoints/{p.name}" for p in sorted(checkpoints.iterdir())
                    if not any(fnmatch.fnmatch(p.name, own) for own in OWN_CHECKPOINT_NAMES)]
    elif checkpoints.exists():
        foreign.append("checkpoints")
    return foreign


def check_replaceable(folder: Path) -> None:
    """UserError unless ``folder`` is a run folder of this tool holding only its own files."""
    if not (folder / MARKER).is_file() and not (folder / "config.yaml").is_file():
        raise UserError(f"--overwrite: {folder} is not an attn-ocgan run folder (no {MARKER} or config.yaml); "
                        "nothing was removed; choose another --out")
    foreign = foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UserError(f"--overwrite: {folder} holds files attn-ocgan did not write ({shown}); nothing was removed; "
                        "move them out or choose another --out")


def write_marker(folder: Path) -> None:
    marker = folder / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"tool": "attn-ocgan", "note": "a run folder; --overwrite may replace it"}) + "\n")


_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (file descriptor, depth): the lock is re-entrant


@contextmanager
def run_folder_lock(folder: Path):
    """Hold the folder's lock (created with the folder) for the block; re-entrant within a process.
    RunFolderInUse when another live process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _held:
        descriptor, depth = _held[key]
        _held[key] = (descriptor, depth + 1)
        try:
            yield
        finally:
            descriptor, depth = _held[key]
            _held[key] = (descriptor, depth - 1)
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    lock_path = folder / LOCK_NAME
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = Path(lock_path).read_text().strip() or "another process"
        os.close(descriptor)
        raise RunFolderInUse(f"run folder {folder} is in use by {holder}; wait for it to finish or choose another --out") from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
    _held[key] = (descriptor, 1)
    try:
        yield
    finally:
        if _held[key][1] <= 1:
            del _held[key]
            os.ftruncate(descriptor, 0)
            os.close(descriptor)  # closing the descriptor releases the flock
        else:  # pragma: no cover - unbalanced exit
            _held[key] = (descriptor, _held[key][1] - 1)


def lock_holder(folder: Path) -> str | None:
    """Who holds the folder's lock, as its holder wrote it ("pid N on HOST"); None when nobody does.
    Reads the lock file only (taking the lock, even briefly, could turn a starting runner away): a
    holder on this host whose process is gone left a stale line and counts as nobody."""
    try:
        holder = (Path(folder) / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    parts = holder.split()
    if len(parts) == 4 and parts[0] == "pid" and parts[2] == "on" and parts[3] == os.uname().nodename:
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return None
        except (PermissionError, ValueError):
            pass
    return holder or None


def has_content(folder: Path) -> bool:
    """Whether ``folder`` holds anything besides its lock file."""
    return folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir())


def replaced_path(folder: Path) -> Path:
    return folder.with_name(folder.name + REPLACED_SUFFIX)


def move_aside(folder: Path) -> Path:
    """Move the contents of a replaceable run folder (not its lock) into ``<name>.replaced``; an
    older one there is removed first. The folder itself, and its lock, stay."""
    check_replaceable(folder)
    aside = replaced_path(folder)
    if aside.exists():
        check_replaceable(aside)
        shutil.rmtree(aside)
    aside.mkdir()
    for entry in folder.iterdir():
        if entry.name != LOCK_NAME:
            entry.rename(aside / entry.name)
    return aside


def restore_aside(folder: Path, aside: Path) -> None:
    """Undo ``move_aside`` after the new run failed before its first checkpoint: the new run's files
    are removed and the old ones put back."""
    if not aside.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name != LOCK_NAME:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in aside.iterdir():
        entry.rename(folder / entry.name)
    aside.rmdir()
