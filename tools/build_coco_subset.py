"""Build the COCO32 masked/unmasked dataset from an official COCO layout.

    python tools/build_coco_subset.py                                   # DATA_ROOT/coco -> DATA_ROOT/coco32 (DATA_ROOT: $ATTN_OCGAN_DATA, else datasets/)
    python tools/build_coco_subset.py --coco-root ../shared/data/coco --allow-fewer --out datasets/coco32

The same command as ``attn-ocgan build-coco32`` (same options), over
:func:`attn_ocgan.data.coco32_build.build_coco32`; see that module for the layout.
"""
from __future__ import annotations

import sys

from attn_ocgan.cli import build_coco32, run_command


def main(argv=None) -> int:
    """Entry point: user errors print one line to stderr (after the eligibility table) and exit 2."""
    return run_command(build_coco32, argv, help_hint="--help")


if __name__ == "__main__":
    sys.exit(main())
