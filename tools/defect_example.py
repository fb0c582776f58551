"""The worked example: from a folder of good parts to scores, decisions, maps and an exported model.

    python tools/defect_example.py                      # COCO at DATA_ROOT/coco ($ATTN_OCGAN_DATA, else datasets/)
    python tools/defect_example.py --coco-root ../shared/data/coco --epochs 15

1. builds a defect-style dataset from real COCO images in the industrial layout
   (attn_ocgan/data/defect_example.py: crops of one class as ``good``; pasted foreign patches and
   smudges as defects, with ground-truth masks) at DATA_ROOT/coco-defects;
2. trains a model on ``good`` at 64 x 64 (``attn-ocgan train ... --normal-class good --size 64``);
3. ``attn-ocgan evaluate`` (image AUC per defect type, pixel AUROC, precision/recall at the stored
   threshold), ``attn-ocgan predict --maps`` on the test folder, ``attn-ocgan export --format onnx``;
4. writes RESULTS/coco-defects/example_maps.png (maps of good and defective test parts) and
   example.md (the numbers and these commands).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import shlex
import sys
from pathlib import Path

from attn_ocgan.cli import main as cli
from attn_ocgan.config import resolve_data_root
from attn_ocgan.data.defect_example import build_defect_example
from attn_ocgan.utils.environment import machine_description
from attn_ocgan.utils.io import atomic_write_text


def run(argv: list[str]) -> None:
    print("$ attn-ocgan " + shlex.join(argv), flush=True)
    status = cli(argv)
    if status:
        sys.exit(status)


def figure(rows: list[dict], maps_dir: Path, out: Path, per_group: int = 3) -> None:
    """Stack predict's maps of ``per_group`` good parts, then ``per_group`` of each defect type.
    predict names the map of its ``index``-th scored image ``<index>_<stem>_<decision>.png``."""
    from PIL import Image

    tiles = []
    for group in ("good", "foreign_patch", "smudge"):
        chosen = [(index, row) for index, row in enumerate(rows) if f"/test/{group}/" in row["path"]][:per_group]
        tiles += [Image.open(maps_dir / f"{index:05d}_{Path(row['path']).stem}_{row['decision']}.png") for index, row in chosen]
    sheet = Image.new("RGB", (max(t.width for t in tiles), sum(t.height + 4 for t in tiles)), "white")
    top = 0
    for tile in tiles:
        sheet.paste(tile, (0, top))
        top += tile.height + 4
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco-root", default=None, help="COCO root (default: DATA_ROOT/coco).")
    parser.add_argument("--data-root", default=None, help="Where coco-defects/ is written (default: $ATTN_OCGAN_DATA, else datasets/).")
    parser.add_argument("--class-name", default="bowl", help="The COCO class whose crops are the good parts.")
    parser.add_argument("--model", default="ocgan")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--runs", default="runs/defect-example")
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    data_root = resolve_data_root(args.data_root)
    coco_root = Path(args.coco_root) if args.coco_root else data_root / "coco"
    tree = data_root / "coco-defects"
    counts = build_defect_example(coco_root, tree, args.class_name)
    base, out = Path(args.runs), Path(args.results) / "coco-defects"
    run_dir = base / "model"  # the run folder holds only what train writes, so --overwrite can replace it
    common = ["--threads", str(args.threads)] if args.threads else []
    run(["train", "--model", args.model, "--dataset", "folder", "--data-root", str(tree), "--normal-class", "good",
         "--size", "64", "--epochs", str(args.epochs), "--eval-every", "0", "--out", str(run_dir), "--overwrite", *common])
    checkpoint = run_dir / "checkpoints" / "last.pt"
    run(["evaluate", "--checkpoint", str(checkpoint), "--out", str(base / "evaluation")])
    run(["predict", "--checkpoint", str(checkpoint), "--out", str(base / "predictions"), "--maps", str(tree / "test")])
    run(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(base / "scorer.onnx")])

    with (base / "predictions" / "scores.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if not row["problem"]]
    figure(rows, base / "predictions" / "maps", out / "example_maps.png")
    metrics = json.loads((base / "evaluation" / "metrics.json").read_text())
    flagged = {group: [r["decision"] == "anomalous" for r in rows if f"/test/{group}/" in r["path"]]
               for group in ("good", "foreign_patch", "smudge")}
    decision = metrics.get("decision", {})
    lines = [f"# Worked example: {args.model} on COCO '{args.class_name}' parts with pasted defects, 64 x 64", "",
             f"Dataset ({tree.name}): " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".", "",
             "| measure | value |", "|---|---|",
             f"| image AUC, all defects | {metrics['auc']:.3f} |",
             *(f"| image AUC, {name} | {value:.3f} |" for name, value in metrics["auc_per_novel_class"].items()),
             *(f"| pixel AUROC, {name} maps | {value:.3f} |" for name, value in (metrics.get("pixel_auc") or {}).items() if value is not None),
             f"| threshold | {decision.get('chosen', '—')} |",
             f"| precision / recall / F1 at it | {decision.get('precision', 0):.3f} / {decision.get('recall', 0):.3f} / {decision.get('f1', 0):.3f} |",
             *(f"| flagged by predict: {group} | {sum(v)}/{len(v)} |" for group, v in flagged.items()), "",
             "Rows of the figure: three good parts, then three with a foreign patch and three with a smudge; "
             "columns: input, reconstruction, residual heat map (and the attention mask for attention models); "
             "the file names carry predict's decision.", "", "![maps](example_maps.png)", "", "Produced by:", "",
             "    python tools/defect_example.py " + shlex.join(argv if argv is not None else sys.argv[1:]), "",
             f"Machine: {machine_description()}; date: {datetime.date.today().isoformat()}; seed 0.", ""]
    atomic_write_text(out / "example.md", "\n".join(lines))
    print(f"wrote {out / 'example.md'} and {out / 'example_maps.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
