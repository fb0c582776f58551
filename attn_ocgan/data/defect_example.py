"""A small defect-style dataset from real COCO images, in the industrial folder layout.

"Parts" are square crops around the instances of one COCO class (several jittered crops per
instance). The instances are split by image into train and test; the test crops become three
groups: ``good`` (as they are), ``foreign_patch`` (a square patch from another COCO image pasted
in) and ``smudge`` (a dark, soft-edged blot). Each defect's mask goes to
``ground_truth/<defect>/<name>_mask.png``. The result is read with ``--dataset folder``
(``docs/data.md``, the industrial layout).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..errors import UserError

DEFECTS = ("foreign_patch", "smudge")


def _instances(coco_root: Path, class_name: str, min_side: int) -> list[tuple[Path, list[float]]]:
    """(image path, [x, y, w, h]) of every instance of ``class_name`` with both box sides >= ``min_side``."""
    from pycocotools.coco import COCO

    found = []
    for split in ("train2017", "val2017"):
        annotations = coco_root / "annotations" / f"instances_{split}.json"
        if not annotations.is_file():
            continue
        coco = COCO(str(annotations))
        ids = coco.getCatIds(catNms=[class_name])
        if not ids:
            raise UserError(f"COCO has no class {class_name!r}; pass a COCO category name such as bowl or car")
        for annotation in coco.loadAnns(coco.getAnnIds(catIds=ids, iscrowd=False)):
            x, y, w, h = annotation["bbox"]
            path = coco_root / split / coco.loadImgs(annotation["image_id"])[0]["file_name"]
            if min(w, h) >= min_side and path.is_file():
                found.append((path, [x, y, w, h]))
    return found


def _crop(image, box, rng, size: int):
    """A square crop around ``box`` (side: the box's longer side x 1.0-1.3, centre jittered by 10 %)."""
    x, y, w, h = box
    side = max(w, h) * rng.uniform(1.0, 1.3)
    cx, cy = x + w / 2 + rng.uniform(-0.1, 0.1) * w, y + h / 2 + rng.uniform(-0.1, 0.1) * h
    return image.crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))).resize((size, size), resample=3)


def _defect(crop, kind: str, donor, rng, size: int):
    """(defective crop, mask) for ``kind``: a patch of ``donor`` pasted in, or a dark soft blot."""
    from PIL import Image, ImageDraw, ImageFilter

    side = int(rng.integers(size // 6, size // 3))
    left, top = (int(v) for v in rng.integers(0, size - side, 2))
    mask = Image.new("L", (size, size), 0)
    out = crop.copy()
    if kind == "foreign_patch":
        dx, dy = (int(v) for v in rng.integers(0, donor.width - side, 2))
        out.paste(donor.crop((dx, dy, dx + side, dy + side)), (left, top))
        ImageDraw.Draw(mask).rectangle((left, top, left + side - 1, top + side - 1), fill=255)
    else:
        ImageDraw.Draw(mask).ellipse((left, top, left + side, top + side), fill=255)
        soft = mask.filter(ImageFilter.GaussianBlur(side / 6))
        out = Image.composite(Image.new("RGB", (size, size), (20, 18, 15)), out, soft.point(lambda v: int(v * 0.85)))
    return out, mask


def build_defect_example(coco_root: Path, out: Path, class_name: str = "bowl", size: int = 64, crops_per_instance: int = 8,
                         test_share: float = 0.25, min_side: int = 32, seed: int = 0, echo=print) -> dict[str, int]:
    """Write the dataset to ``out`` (replaced if it is an earlier build); returns image counts per folder."""
    from PIL import Image

    instances = _instances(Path(coco_root), class_name, min_side)
    images = sorted({path for path, _ in instances})
    if len(images) < 4:
        raise UserError(f"only {len(images)} COCO image(s) hold a {class_name} with box sides >= {min_side} px; "
                        "choose a more frequent class (e.g. bowl, car) or lower --min-side")
    rng = np.random.default_rng(seed)
    test_images = set(rng.choice(len(images), max(1, int(round(len(images) * test_share))), replace=False).tolist())
    out = Path(out)
    if out.exists():
        if not (out / "train" / "good").is_dir():
            raise UserError(f"{out} exists and is not a dataset this builder wrote; choose another --out")
        shutil.rmtree(out)
    counts: dict[str, int] = {}

    def save(image, folder: str, name: str) -> None:
        (out / folder).mkdir(parents=True, exist_ok=True)
        image.save(out / folder / name)
        counts[folder] = counts.get(folder, 0) + 1

    for index, (path, box) in enumerate(instances):
        with Image.open(path) as source:
            source = source.convert("RGB")
            is_test = images.index(path) in test_images
            for copy in range(crops_per_instance if not is_test else 3):
                crop, name = _crop(source, box, rng, size), f"{index:04d}_{copy}.png"
                if not is_test:
                    save(crop, "train/good", name)
                    continue
                kind = ("good", *DEFECTS)[copy]
                if kind == "good":
                    save(crop, "test/good", name)
                    continue
                with Image.open(images[int(rng.integers(len(images)))]) as donor:
                    defective, mask = _defect(crop, kind, donor.convert("RGB").resize((size * 2, size * 2)), rng, size)
                save(defective, f"test/{kind}", name)
                save(mask, f"ground_truth/{kind}", name.replace(".png", "_mask.png"))
    echo(", ".join(f"{folder}: {count}" for folder, count in sorted(counts.items())))
    return counts
