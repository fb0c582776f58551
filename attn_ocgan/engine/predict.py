"""Score new, unlabelled images with a trained checkpoint: scores, decisions and optional maps.

Inputs are image files, folders (searched recursively) or glob patterns. Each image is decoded
with PIL and brought to the model's channels and size the way its training data was: digits of
28 x 28 are zero-padded to 32 (MNIST), other sizes resized (bicubic for image folders, as the
folder loader does; bilinear with antialiasing for the torchvision datasets). Unreadable files are
listed in ``scores.csv`` with the reason and never stop the run.
"""
from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.datasets import UNREADABLE_IMAGE_ERRORS, decode_image, to_size
from ..data.one_class import to_unit_range
from ..errors import UserError
from ..utils.io import atomic_write_text
from .device import model_device

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm")
FOLDER_DATASETS = ("folder", "coco32")  # decoded with PIL and resized bicubic by their loaders


def collect_inputs(inputs) -> list[Path]:
    """Files, folders (recursive, image suffixes only) and glob patterns -> sorted unique paths."""
    found: list[Path] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found += [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(glob.glob(str(text), recursive=True))
            if not matches:
                raise UserError(f"input {text} is not a file, a folder or a glob pattern that matches anything")
            found += [Path(m) for m in matches if Path(m).is_file()]
    found = list(dict.fromkeys(found))
    if not found:
        raise UserError(f"no image files in {' '.join(map(str, inputs))} ({', '.join(IMAGE_SUFFIXES)}); pass images or folders of images")
    return found


@dataclass
class Prepared:
    images: torch.Tensor  # uint8 (N, C, size, size) of the readable inputs
    paths: list[Path]  # readable, in order
    problems: dict[Path, str]  # unreadable input -> reason
    upscaled: int = 0  # images smaller than the model's size


def prepare_images(paths: list[Path], channels: int, size: int, dataset: str, progress: bool = True) -> Prepared:
    """Decode and size every path for a model of ``channels`` x ``size`` x ``size`` trained on ``dataset``
    (in a thread pool: PIL decodes without holding the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(tqdm(pool.map(lambda path: _prepare_one(path, channels, size, dataset), paths), total=len(paths),
                            desc="decode", disable=not progress, leave=False, mininterval=1))
    images, kept, problems, upscaled = [], [], {}, 0
    for path, (tensor, problem, small) in zip(paths, results):
        if problem:
            problems[path] = problem
            continue
        images.append(tensor)
        kept.append(path)
        upscaled += small
    stacked = torch.stack(images) if images else torch.zeros((0, channels, size, size), dtype=torch.uint8)
    return Prepared(stacked, kept, problems, upscaled)


def _prepare_one(path: Path, channels: int, size: int, dataset: str) -> tuple[torch.Tensor | None, str, bool]:
    """(uint8 (C, size, size) or None, the problem if unreadable, whether it was upscaled)."""
    try:
        image = decode_image(path, "L" if channels == 1 else "RGB")
    except UNREADABLE_IMAGE_ERRORS as error:
        return None, f"unreadable ({type(error).__name__}: {str(error).splitlines()[0][:80] if str(error) else ''})", False
    if image.width == 0 or image.height == 0:
        return None, "empty image", False
    small = min(image.size) < size and not (image.size == (28, 28) and size == 32)
    if dataset in FOLDER_DATASETS or image.width != image.height:
        if image.size != (size, size):  # the folder loader's resize (a non-square image is squeezed)
            image = image.resize((size, size), resample=3)
        return _as_tensor(image, channels), "", small
    # the torchvision datasets' sizing: 28 x 28 padded to 32, else bilinear with antialiasing
    return to_size(_as_tensor(image, channels)[None], size)[0], "", small


@torch.inference_mode()
def score_images(model, images: torch.Tensor, batch_size: int = 256, progress: bool = True) -> dict[str, np.ndarray]:
    """{"score": (N,), and per score component its raw value (N,)} for uint8 images (N, C, H, W)."""
    model.eval()
    device = model_device(model)
    columns: dict[str, list] = {"score": []}
    names = model.score_component_names
    for start in tqdm(range(0, len(images), batch_size), desc="score", disable=not progress, leave=False):
        batch = to_unit_range(images[start:start + batch_size]).to(device)
        if names:
            components = model.score_components(batch)
            columns["score"].append(model.combine_score_components(components).cpu())
            for index, name in enumerate(names):
                columns.setdefault(name, []).append(components[:, index].cpu())
        else:
            columns["score"].append(model.score(batch).cpu())
    return {name: torch.cat(parts).double().numpy() if parts else np.zeros(0) for name, parts in columns.items()}


def write_scores_csv(csv_path: Path, prepared: Prepared, columns: dict[str, np.ndarray], threshold: float) -> None:
    """One row per input: path, score, decision, each component, and why a file was not scored."""
    names = [name for name in columns if name != "score"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "score", "decision", *names, "problem"])
    for index, image_path in enumerate(prepared.paths):
        score = float(columns["score"][index])
        writer.writerow([str(image_path), f"{score:.6g}", "anomalous" if score > threshold else "normal",
                         *(f"{float(columns[name][index]):.6g}" for name in names), ""])
    for image_path, reason in prepared.problems.items():
        writer.writerow([str(image_path), "", "", *([""] * len(names)), reason])
    atomic_write_text(csv_path, buffer.getvalue())


@torch.inference_mode()
def save_maps(out_dir: Path, model, prepared: Prepared, columns: dict[str, np.ndarray], threshold: float,
              batch_size: int = 64, scale: int = 4, progress: bool = True) -> list[Path]:
    """One PNG per scored image: input | reconstruction | residual heat map | attention mask (where
    the model has them), each ``scale`` times enlarged, with the score in the file name's row."""
    from matplotlib import colormaps
    from PIL import Image

    from ..utils.io import atomic_path

    heat = colormaps["inferno"]
    device = model_device(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in tqdm(range(0, len(prepared.paths), batch_size), desc="maps", disable=not progress, leave=False):
        batch = to_unit_range(prepared.images[start:start + batch_size]).to(device)
        reconstruction = model.reconstruct(batch)
        masks = model.attention_maps(batch)
        for offset in range(len(batch)):
            index = start + offset
            tiles = [_rgb(batch[offset])]
            if reconstruction is not None:
                residual = (batch[offset] - reconstruction[offset]).pow(2).mean(0)
                tiles += [_rgb(reconstruction[offset]), _heat(residual / residual.max().clamp_min(1e-12), heat)]
            if masks is not None:
                tiles.append(_heat(masks[offset, 0], heat))
            strip = np.concatenate([np.pad(t, ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in tiles], axis=1)
            image = Image.fromarray(strip).resize((strip.shape[1] * scale, strip.shape[0] * scale), resample=0)
            decision = "anomalous" if columns["score"][index] > threshold else "normal"
            path = out_dir / f"{index:05d}_{prepared.paths[index].stem}_{decision}.png"
            with atomic_path(path) as temporary:
                image.save(temporary, format="PNG")
            written.append(path)
    return written


def _as_tensor(image, channels: int) -> torch.Tensor:
    """PIL image -> uint8 (C, H, W)."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return array[None] if channels == 1 else array.permute(2, 0, 1)


def _rgb(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> uint8 (H, W, 3)."""
    array = ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def _heat(values: torch.Tensor, colormap) -> np.ndarray:
    """(H, W) in [0, 1] -> uint8 (H, W, 3) through ``colormap``."""
    return (colormap(values.float().clamp(0, 1).cpu().numpy())[..., :3] * 255).round().astype(np.uint8)
