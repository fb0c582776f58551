#!/usr/bin/env python3
"""Pack an image-folder tree (e.g. the CIFAR-10 JPEG copy) into one file, and unpack it elsewhere.

For moving a dataset to a machine without network where many small files cost more than their
bytes (format: ``attn_ocgan/utils/folder_pack.py``):

    python tools/pack_image_folder.py pack ../shared/data/cifar10-jpeg .gpu/cifar10-jpeg.pack
    python tools/pack_image_folder.py unpack .gpu/cifar10-jpeg.pack /tmp/data/cifar10-jpeg
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attn_ocgan.errors import UserError
from attn_ocgan.utils.folder_pack import pack_folder, unpack_folder


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
    try:
        if args.command == "pack":
            print(f"packed {pack_folder(args.root, args.out)} files into {args.out}")
        else:
            print(f"unpacked {unpack_folder(args.packed, args.dest)} files into {args.dest}")
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
