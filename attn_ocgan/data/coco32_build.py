"""Build the cropped COCO32 dataset: one unmasked and one masked 32x32 crop per object.

For every non-crowd instance of the chosen classes whose box has both sides >= ``min_side``
pixels and an aspect ratio w/h inside ``aspect_range`` (bounds included), crop the box,
resize it with antialiasing to ``size`` x ``size`` and write

    OUT/unmasked/{train,test}/<class>/<annotation_id>.png   the crop
    OUT/masked/{train,test}/<class>/<annotation_id>.png     the crop, 0 outside the instance mask
    OUT/masks/{train,test}/<class>/<annotation_id>.png      the instance mask (0/255) at crop size
    OUT/manifest.csv                                        one row per crop (source, box, coverage)
    OUT/summary.json                                        counts per class, skips and why, options

Class folders use the COCO name with spaces replaced by ``_`` (``sports_ball``). The output
is built in a hidden temporary folder beside OUT and renamed at the end, so an interrupted
build never leaves a half dataset; the same inputs and seed give byte-identical files.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import resolve_data_root
from ..errors import UserError

DEFAULT_CLASSES = ("airplane", "car", "bird", "cat", "sports ball", "dog", "bowl", "horse", "boat", "truck")
VARIANTS = ("unmasked", "masked")
MANIFEST_FIELDS = ("split", "class", "image_id", "annotation_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h",
                   "source_file", "mask_coverage")
COCO_HOW_TO = ("download COCO 2017 (train2017/val2017 images and annotations_trainval2017.zip) from "
               "https://cocodataset.org/#download into that layout, or pass --coco-root")


COCO_FOLDER, COCO32_FOLDER = "coco", "coco32"  # below the data root


def default_coco_root(data_root: str | None = None) -> Path:
    """The COCO source by the data-root rule: ``ROOT/coco`` (--data-root, else $ATTN_OCGAN_DATA, else datasets/)."""
    return resolve_data_root(data_root) / COCO_FOLDER


def default_out(data_root: str | None = None) -> Path:
    """Where COCO32 is written by default: ``ROOT/coco32``, where ``--dataset coco32`` reads it."""
    return resolve_data_root(data_root) / COCO32_FOLDER


def class_folder(name: str) -> str:
    return name.replace(" ", "_")


@dataclass(frozen=True)
class BuildOptions:
    coco_root: Path = field(default_factory=default_coco_root)
    out: Path = field(default_factory=default_out)
    splits: tuple[str, ...] = ("train2017", "val2017")
    classes: tuple[str, ...] = DEFAULT_CLASSES
    min_side: float = 50.0
    aspect_range: tuple[float, float] = (0.5, 2.0)
    size: int = 32
    per_class: int = 550  # objects per class, train + test
    test_per_class: int = 50  # of those, for the test split
    seed: int = 0
    allow_fewer: bool = False
    overwrite: bool = False

    def __post_init__(self):
        low, high = self.aspect_range
        problems = [
            (not self.splits, "--splits names no split"),
            (not self.classes, "--classes names no class"),
            (len(set(self.classes)) != len(self.classes), "--classes names a class twice"),
            (self.min_side < 1, f"--min-side {self.min_side} must be >= 1"),
            (not 0 < low <= high, f"--aspect-range {low} {high} must satisfy 0 < low <= high"),
            (self.size < 4, f"--size {self.size} must be >= 4"),
            (self.per_class < 1, f"--per-class {self.per_class} must be >= 1"),
            (not 0 <= self.test_per_class < self.per_class,
             f"--test-per-class {self.test_per_class} must be in [0, --per-class)"),
        ]
        for failed, message in problems:
            if failed:
                raise UserError(message)


@dataclass(frozen=True)
class Candidate:
    """One eligible COCO instance."""

    class_name: str
    coco_split: str
    image_id: int
    annotation_id: int
    bbox: tuple[float, float, float, float]  # COCO x, y, w, h in pixels
    source_file: str  # relative to the COCO root, e.g. val2017/000000000139.jpg


# --------------------------------------------------------------------------- annotations
def load_annotations(coco_root: Path, split: str):
    """pycocotools COCO for ``coco_root/annotations/instances_<split>.json``; one-line errors."""
    from pycocotools.coco import COCO

    path = coco_root / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        if not coco_root.is_dir() or not (coco_root / "annotations").is_dir():
            raise UserError(f"COCO not found: looked for {path}; {COCO_HOW_TO}")
        found = sorted(p.name for p in (coco_root / "annotations").glob("instances_*.json"))
        raise UserError(f"annotation file {path} is missing (found: {', '.join(found) or 'none'}); "
                        "pass --splits with the splits you have")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress to stdout
            coco = COCO(str(path))
        for key in ("images", "annotations", "categories"):
            if key not in coco.dataset:
                raise KeyError(key)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        kind = "not valid JSON" if isinstance(error, ValueError) else f"not a COCO instances file ({error!r} missing or wrong)"
        raise UserError(f"annotation file {path} is {kind}; re-download or fix it") from None
    return coco


def category_ids(coco, classes, path_hint: str) -> dict[int, str]:
    """COCO category id -> class name for the requested classes."""
    by_name = {category["name"]: category["id"] for category in coco.dataset["categories"]}
    unknown = [name for name in classes if name not in by_name]
    if unknown:
        raise UserError(f"unknown COCO class(es) {', '.join(map(repr, unknown))} in {path_hint}; "
                        f"known: {', '.join(sorted(by_name))}")
    return {by_name[name]: name for name in classes}


def skip_reason(annotation: dict, options: BuildOptions) -> str | None:
    """Why an instance is not eligible (None: eligible). Bounds are inclusive."""
    if annotation.get("iscrowd", 0):
        return "crowd"
    bbox = annotation.get("bbox")
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        return "missing or malformed bbox"
    _, _, width, height = bbox
    if width < options.min_side or height < options.min_side:
        return "box smaller than min-side"
    low, high = options.aspect_range
    if not low <= width / height <= high:
        return "aspect ratio outside range"
    return None


def inside_split(file_name) -> bool:
    """Whether an image's ``file_name`` stays inside its split folder ('../x.jpg' or '/x.jpg' do not)."""
    if not isinstance(file_name, str) or not file_name:
        return False
    normal = os.path.normpath(file_name)
    return not os.path.isabs(normal) and normal not in (".", "..") and not normal.startswith(".." + os.sep)


def find_candidates(cocos: dict, options: BuildOptions):
    """Eligible instances per class (sorted by annotation id) and skip counts per class and reason."""
    eligible: dict[str, list[Candidate]] = {name: [] for name in options.classes}
    skipped: dict[str, Counter] = {name: Counter() for name in options.classes}
    for split, coco in cocos.items():
        categories = category_ids(coco, options.classes, f"instances_{split}.json")
        for annotation in coco.dataset["annotations"]:
            name = categories.get(annotation["category_id"])
            if name is None:
                continue
            reason = skip_reason(annotation, options)
            if reason is None and "segmentation" not in annotation:
                reason = "missing segmentation"
            image = coco.imgs.get(annotation["image_id"])
            if reason is None and image is None:
                reason = "image not listed in annotations"
            if reason is None and not inside_split(image.get("file_name")):
                reason = "image path outside its split folder"
            if reason is None:
                source_file = f"{split}/{image['file_name']}"
                if not (options.coco_root / source_file).is_file():
                    reason = "missing image file"
            if reason is not None:
                skipped[name][reason] += 1
                continue
            eligible[name].append(Candidate(name, split, int(annotation["image_id"]), int(annotation["id"]),
                                            tuple(float(v) for v in annotation["bbox"]), source_file))
    for name in eligible:
        eligible[name].sort(key=lambda candidate: candidate.annotation_id)
    return eligible, skipped


# --------------------------------------------------------------------------- sampling
def test_count(taken: int, options: BuildOptions) -> int:
    """Test objects for a class with ``taken`` objects: the requested share, stratified.

    With the full ``per_class`` this is exactly ``test_per_class``; with fewer (--allow-fewer)
    it is the same fraction rounded, keeping at least one test and one train object when a
    class has two or more.
    """
    if taken >= options.per_class:
        return options.test_per_class
    if options.test_per_class == 0 or taken < 2:
        return 0
    share = round(taken * options.test_per_class / options.per_class)
    return min(max(share, 1), taken - 1)


def plan_split(eligible: dict[str, list[Candidate]], options: BuildOptions) -> dict[str, dict[str, list[Candidate]]]:
    """Seeded sample of ``per_class`` objects per class, split train/test per class."""
    short = {name: len(items) for name, items in eligible.items() if len(items) < options.per_class}
    if short and not options.allow_fewer:
        table = eligibility_table(eligible, options)
        listed = ", ".join(f"{name} {count}/{options.per_class}" for name, count in short.items())
        raise UserError(
            f"too few eligible objects for {len(short)} class(es) ({listed}); "
            "pass --allow-fewer to build what exists, or use the full COCO release", table)
    plan = {}
    for name, items in eligible.items():
        rng = random.Random(f"coco32/{options.seed}/{name}")  # per class: independent of the other classes
        taken = rng.sample(items, min(len(items), options.per_class))
        n_test = test_count(len(taken), options)
        by_id = lambda group: sorted(group, key=lambda candidate: candidate.annotation_id)  # noqa: E731
        plan[name] = {"train": by_id(taken[n_test:]), "test": by_id(taken[:n_test])}
    return plan


def eligibility_table(eligible: dict[str, list[Candidate]], options: BuildOptions) -> str:
    lines = [f"{'class':<14}{'eligible':>9}{'requested':>11}"]
    for name, items in eligible.items():
        flag = "  <- short" if len(items) < options.per_class else ""
        lines.append(f"{name:<14}{len(items):>9}{options.per_class:>11}{flag}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- cropping
def crop_box(bbox, image_width: int, image_height: int) -> tuple[int, int, int, int]:
    """Integer (left, top, right, bottom) covering the float COCO box, clipped to the image."""
    x, y, w, h = bbox
    left, top = max(0, math.floor(x)), max(0, math.floor(y))
    right, bottom = min(image_width, math.ceil(x + w)), min(image_height, math.ceil(y + h))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def crop_pair(image, instance_mask: np.ndarray, bbox, size: int):
    """Crop one object. Returns uint8 (unmasked (s, s, 3), masked (s, s, 3), mask (s, s) in {0, 1}).

    The crop is resized with PIL's antialiased bicubic filter. The mask is area-averaged to
    the crop size and thresholded at one half; the masked crop is the unmasked crop times
    that mask, so it is exactly 0 outside the object and equal to the unmasked crop inside.
    """
    from PIL import Image

    box = crop_box(bbox, *image.size)
    unmasked = np.asarray(image.crop(box).resize((size, size), Image.BICUBIC), dtype=np.uint8)
    mask_image = Image.fromarray((instance_mask > 0).astype(np.uint8) * 255).crop(box)
    mask = (np.asarray(mask_image.resize((size, size), Image.BOX), dtype=np.uint8) >= 128).astype(np.uint8)
    return unmasked, unmasked * mask[..., None], mask


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


# --------------------------------------------------------------------------- build
def build_coco32(options: BuildOptions, progress: bool = True, echo=print) -> dict:
    """Build COCO32 into ``options.out`` (atomically); returns the summary written to summary.json."""
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    out = Path(options.out)
    if out.exists() and not options.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to rebuild it or choose another --out")
    if out.exists():
        check_replaceable_build(out)
    cocos = {split: load_annotations(Path(options.coco_root), split) for split in options.splits}
    for split in options.splits:
        if not (Path(options.coco_root) / split).is_dir():
            raise UserError(f"COCO images folder {Path(options.coco_root) / split} is missing (its annotations exist); "
                            f"{COCO_HOW_TO}")
    eligible, skipped = find_candidates(cocos, options)
    plan = plan_split(eligible, options)

    # Decode every source image once: group the planned crops by image.
    by_image: dict[str, list[tuple[str, Candidate]]] = defaultdict(list)
    for name, parts in plan.items():
        for split, candidates in parts.items():
            for candidate in candidates:
                by_image[candidate.source_file].append((split, candidate))

    temporary = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir(parents=True)
    except OSError as error:  # e.g. a folder nobody may write into: name the --out asked for, not the temporary
        raise OSError(error.errno, error.strerror, str(out)) from error
    rows = []
    try:
        for source_file in tqdm(sorted(by_image), desc="crop COCO objects", unit="image", disable=not progress):
            try:
                with Image.open(Path(options.coco_root) / source_file) as opened:
                    image = opened.convert("RGB")
            except (OSError, UnidentifiedImageError):
                for _, candidate in by_image[source_file]:
                    skipped[candidate.class_name]["unreadable image file"] += 1
                continue
            for split, candidate in by_image[source_file]:
                coco = cocos[candidate.coco_split]
                instance_mask = coco.annToMask(coco.anns[candidate.annotation_id])
                unmasked, masked, mask = crop_pair(image, instance_mask, candidate.bbox, options.size)
                relative = Path(split) / class_folder(candidate.class_name) / f"{candidate.annotation_id}.png"
                _save_png(unmasked, temporary / "unmasked" / relative)
                _save_png(masked, temporary / "masked" / relative)
                _save_png(mask * 255, temporary / "masks" / relative)
                rows.append({"split": split, "class": candidate.class_name, "image_id": candidate.image_id,
                             "annotation_id": candidate.annotation_id,
                             **dict(zip(("bbox_x", "bbox_y", "bbox_w", "bbox_h"), candidate.bbox)),
                             "source_file": source_file, "mask_coverage": round(float(mask.mean()), 6)})
        if not rows:
            raise UserError("no object could be cropped (no eligible instance with a readable image); check "
                            "--coco-root, --splits and --classes", eligibility_table(eligible, options))
        class_order = {name: index for index, name in enumerate(options.classes)}
        rows.sort(key=lambda row: (row["split"] != "train", class_order[row["class"]], row["annotation_id"]))
        _write_manifest(rows, temporary / "manifest.csv")
        summary = make_summary(rows, eligible, skipped, options)
        (temporary / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        _replace_folder(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    short = [name for name, counts in summary["classes"].items() if counts["taken"] < options.per_class]
    if short:
        echo(f"warning: built fewer than {options.per_class} objects for {len(short)} class(es) "
             f"({', '.join(short)}); see {out / 'summary.json'}")
    return summary


BUILD_NAMES = ("unmasked", "masked", "masks", "manifest.csv", "summary.json")  # everything a build writes into --out


def check_replaceable_build(out: Path) -> None:
    """UserError unless ``out`` is an empty folder or a COCO32 build (its manifest, nothing else
    beside what a build writes): --overwrite never removes anything else."""
    if not out.is_dir():
        raise UserError(f"--overwrite: {out} is a file, not a COCO32 folder; nothing was removed; choose another --out")
    entries = sorted(path.name for path in out.iterdir())
    foreign = [name for name in entries if name not in BUILD_NAMES]
    if entries and (foreign or "manifest.csv" not in entries):
        shown = ", ".join(foreign[:5]) if foreign else "no manifest.csv"
        raise UserError(f"--overwrite: {out} is not a COCO32 build ({shown}); nothing was removed; "
                        "choose another --out or move those files out")


def _write_manifest(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _replace_folder(source: Path, destination: Path) -> None:
    """Rename ``source`` to ``destination``; an existing destination is removed only after."""
    if destination.exists():
        retired = destination.parent / f".{destination.name}.old-{os.getpid()}"
        os.replace(destination, retired)
        os.replace(source, destination)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(source, destination)


def make_summary(rows, eligible, skipped, options: BuildOptions) -> dict:
    written = Counter((row["class"], row["split"]) for row in rows)
    classes = {
        name: {"eligible": len(eligible[name]), "taken": written[name, "train"] + written[name, "test"],
               "train": written[name, "train"], "test": written[name, "test"],
               "skipped": dict(sorted(skipped[name].items()))}
        for name in options.classes
    }
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(options).items()}
    for key in ("overwrite", "out"):  # not inputs: two builds into different folders are identical
        settings.pop(key)
    return {
        "total": {"train": sum(c["train"] for c in classes.values()), "test": sum(c["test"] for c in classes.values()),
                  "eligible": sum(c["eligible"] for c in classes.values())},
        "complete": all(c["taken"] >= options.per_class for c in classes.values()),
        "classes": classes,
        "options": settings,
    }


def read_manifest(root: Path) -> list[dict]:
    """Rows of ``root/manifest.csv`` with numeric fields converted."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        raise UserError(f"{path} not found; build COCO32 first with: attn-ocgan build-coco32 --out {root}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["image_id"], row["annotation_id"] = int(row["image_id"]), int(row["annotation_id"])
        row["mask_coverage"] = float(row["mask_coverage"])
    return rows
