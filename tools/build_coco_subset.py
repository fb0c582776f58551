"""Build the COCO32 masked/unmasked dataset from an official COCO layout.

    python tools/build_coco_subset.py                                   # $ATTN_OCGAN_DATA/coco -> datasets/coco32
    python tools/build_coco_subset.py --coco-root ../shared/data/coco --allow-fewer --out datasets/coco32

Thin wrapper over :func:`attn_ocgan.data.coco32_build.build_coco32`; see that module for the layout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from attn_ocgan.cli import run_command
from attn_ocgan.data.coco32_build import DEFAULT_CLASSES, BuildOptions, build_coco32, default_coco_root


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--coco-root", type=click.Path(file_okay=False), default=None,
              help="COCO root with annotations/instances_<split>.json and <split>/ images "
                   "(default: $ATTN_OCGAN_DATA/coco, else datasets/coco).")
@click.option("--splits", default="train2017,val2017", show_default=True, help="COCO splits pooled as the source.")
@click.option("--out", default="datasets/coco32", show_default=True, type=click.Path(file_okay=False))
@click.option("--classes", default=",".join(DEFAULT_CLASSES), show_default=True, help="Comma-separated COCO class names.")
@click.option("--min-side", type=float, default=50.0, show_default=True, help="Keep boxes with width and height >= this (px).")
@click.option("--aspect-range", type=(float, float), default=(0.5, 2.0), show_default=True,
              help="Keep boxes whose w/h lies in [LOW, HIGH].")
@click.option("--size", type=int, default=32, show_default=True, help="Crop side after resizing.")
@click.option("--per-class", type=int, default=550, show_default=True, help="Objects per class (train + test).")
@click.option("--test-per-class", type=int, default=50, show_default=True, help="Of those, objects for the test split.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--allow-fewer", is_flag=True, help="Build what exists when a class has fewer eligible objects.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of unmasked vs masked crops per class here.")
def build(coco_root, splits, out, classes, min_side, aspect_range, size, per_class, test_per_class, seed, allow_fewer,
          overwrite, quiet, contact_sheet):
    """Crop COCO objects to SIZE x SIZE, unmasked and masked, with a manifest and a summary."""
    options = BuildOptions(
        coco_root=Path(coco_root) if coco_root else default_coco_root(), out=Path(out), splits=_names(splits),
        classes=_names(classes), min_side=min_side, aspect_range=tuple(aspect_range), size=size, per_class=per_class,
        test_per_class=test_per_class, seed=seed, allow_fewer=allow_fewer, overwrite=overwrite)
    summary = build_coco32(options, progress=not quiet, echo=lambda line: click.echo(line, err=True))
    click.echo(f"{'class':<14}{'eligible':>9}{'train':>7}{'test':>6}")
    for name, counts in summary["classes"].items():
        click.echo(f"{name:<14}{counts['eligible']:>9}{counts['train']:>7}{counts['test']:>6}")
    total = summary["total"]
    click.echo(f"wrote {total['train']} train + {total['test']} test crops (unmasked, masked, masks) to {out}")
    if contact_sheet:
        from attn_ocgan.viz.coco32 import save_coco32_contact_sheet

        click.echo(f"contact sheet: {save_coco32_contact_sheet(out, contact_sheet)}")


def main(argv=None) -> int:
    """Entry point: user errors print one line to stderr (after the eligibility table) and exit 2."""
    return run_command(build, argv, help_hint="--help")


if __name__ == "__main__":
    sys.exit(main())
