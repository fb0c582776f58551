"""A folder tree (e.g. the CIFAR-10 JPEG copy) as one file, for machines without network.

Many small files cost more than their bytes to move (a tar pads every 1 KB JPEG to 1.5 KB plus a
512-byte header); this format adds nothing per file. Layout: 8-byte little-endian length N, N bytes
of zlib-compressed JSON ``[[relative_path, size], ...]``, then the files' bytes back to back.
Unpacking checks that every byte was used.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from ..errors import UserError
from .io import atomic_path


def pack_folder(root: Path, out: Path) -> int:
    """Write every file under ``root`` into ``out`` (atomically); returns the number of files."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the dataset's root folder")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"no files under {root}; pass the dataset's root folder")
    index = [[p.relative_to(root).as_posix(), p.stat().st_size] for p in files]
    header = zlib.compress(json.dumps(index).encode())
    with atomic_path(Path(out)) as temporary, open(temporary, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)))
        handle.write(header)
        for path in files:
            handle.write(path.read_bytes())
    return len(files)


def unpack_folder(packed: Path, dest: Path) -> int:
    """Recreate the packed tree under ``dest``; returns the number of files."""
    packed, dest = Path(packed), Path(dest)
    if not packed.is_file():
        raise UserError(f"{packed} does not exist; pack a folder first")
    with open(packed, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        index = json.loads(zlib.decompress(handle.read(length)))
        for relative, size in index:
            if ".." in Path(relative).parts:
                raise UserError(f"{packed} names a path outside the destination: {relative}")
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            data = handle.read(size)
            if len(data) != size:
                raise UserError(f"{packed} is truncated at {relative}; pack it again")
            target.write_bytes(data)
        if handle.read(1):
            raise UserError(f"{packed} has bytes after its last file; pack it again")
    return len(index)
