#!/usr/bin/env python3
"""Pack an image-folder tree (e.g. the CIFAR-10 JPEG copy) into one file, and unpack it elsewhere.

For moving a dataset to a machine without network where many small files cost more than their
bytes (a tar pads every 1 KB JPEG to 1.5 KB plus a 512-byte header; this format adds nothing per file):

    python tools/pack_image_folder.py pack ../shared/data/cifar10-jpeg .gpu/cifar10-jpeg.pack
    python tools/pack_image_folder.py unpack .gpu/cifar10-jpeg.pack /tmp/data/cifar10-jpeg

Format: 8-byte little-endian length N, N bytes of zlib-compressed JSON ``[[relative_path, size], ...]``,
then the files' bytes back to back. Unpacking checks that every byte was used.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attn_ocgan.utils.io import atomic_path  # noqa: E402


def pack(root: Path, out: Path) -> int:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"error: no files under {root}; pass the dataset's root folder")
    index = [[p.relative_to(root).as_posix(), p.stat().st_size] for p in files]
    header = zlib.compress(json.dumps(index).encode())
    with atomic_path(out) as temporary, open(temporary, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)))
        handle.write(header)
        for path in files:
            handle.write(path.read_bytes())
    return len(files)


def unpack(packed: Path, dest: Path) -> int:
    with open(packed, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        index = json.loads(zlib.decompress(handle.read(length)))
        for relative, size in index:
            target = dest / relative
            if ".." in Path(relative).parts:
                raise SystemExit(f"error: {packed} names a path outside the destination: {relative}")
            target.parent.mkdir(parents=True, exist_ok=True)
            data = handle.read(size)
            if len(data) != size:
                raise SystemExit(f"error: {packed} is truncated at {relative}; pack it again")
            target.write_bytes(data)
        if handle.read(1):
            raise SystemExit(f"error: {packed} has bytes after its last file; pack it again")
    return len(index)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pack", help="ROOT -> one file")
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    u = commands.add_parser("unpack", help="one file -> DEST tree")
    u.add_argument("packed", type=Path)
    u.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "pack":
        if not args.root.is_dir():
            raise SystemExit(f"error: {args.root} is not a folder; pass the dataset's root folder")
        print(f"packed {pack(args.root, args.out)} files into {args.out}")
    else:
        if not args.packed.is_file():
            raise SystemExit(f"error: {args.packed} does not exist; pack a folder first")
        print(f"unpacked {unpack(args.packed, args.dest)} files into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
