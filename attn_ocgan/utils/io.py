"""Atomic file writes: a temp file in the same folder, synced to disk, then ``os.replace``."""
from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The file gets the permission bits of the file it replaces, or for a new file the umask's default
    (``0o666 & ~umask``) rather than mkstemp's 0600; it is fsynced before the rename and the folder after.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:  # e.g. a folder nobody may write into: name the file asked for
        raise OSError(error.errno, error.strerror, str(path)) from error
    os.close(handle)
    try:
        yield Path(temporary)
        _fsync(temporary, os.O_RDWR)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except OSError as error:  # name the file being written, not its temporary
        Path(temporary).unlink(missing_ok=True)
        if error.filename == str(temporary):
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # best effort: not every system can open or sync a folder
        _fsync(path.parent, os.O_RDONLY)


def _fsync(path: str | Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _mode_for(path: Path) -> int:
    """Permission bits for a file written at ``path``: those of the file there, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask: read from /proc where Linux offers it (os.umask can only read it by setting it)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def stale_temporaries(folder: str | Path, suffix: str) -> list[Path]:
    """Temporaries :func:`atomic_path` left in ``folder`` (e.g. killed mid-write) for targets named ``*SUFFIX``:
    files named ``.<target>.<8 random characters>.tmp``, as mkstemp names them; nothing else."""
    pattern = re.compile(rf"\..+{re.escape(suffix)}\.[a-z0-9_]{{8}}\.tmp")
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry for entry in folder.iterdir() if pattern.fullmatch(entry.name) and entry.is_file())


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_write_json(path: str | Path, payload) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


@contextmanager
def file_lock(path: str | Path):
    """Hold an exclusive lock on ``path`` + '.lock' (POSIX ``flock``) while the block runs, so that
    several processes can read-modify-write one results file (e.g. one protocol process per class
    on a GPU machine). Where ``fcntl`` does not exist (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
