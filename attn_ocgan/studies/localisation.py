"""How well do attention maps and Grad-CAM maps fall on the object? Measured on COCO32 crops,
whose true instance masks come with the dataset (``masks/`` folder of the builder).

Metrics per image (maps and masks (B, 1, H, W); maps in [0, 1]):
- pointing game: the map's maximum lies inside the object (a constant map points nowhere: miss);
- IoU of the map thresholded at 0.5, and at the map's own mean, with the object mask;
- for the Grad-CAM head, occlusion: how much its logit drops per erased pixel when the object is
  set to grey, and when the background is (``occlusion_drops``): where its evidence lies, without
  the map.
Two baselines are reported beside the models: a centred Gaussian map (COCO32 crops are object
boxes, so the centre alone already points at the object most of the time) and a constant map
(its IoU is the object's share of the crop, the floor any useful map must beat).
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..data.datasets import dataset_path, load_coco32, load_coco32_masks
from ..data.one_class import to_unit_range
from ..errors import UserError
from ..viz.gradcam import find_head, gradcam_maps
from ..engine.device import model_device, resolve_device
from .loading import checkpoint_label, load_checkpoints
from ..utils.io import atomic_path, atomic_write_text


def pointing_hits(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """bool (B,): the (first) maximum of each map lies inside its mask; constant maps miss."""
    flat_maps, flat_masks = maps.flatten(1), masks.flatten(1).bool()
    peak = flat_maps.argmax(dim=1)
    constant = flat_maps.amax(dim=1) == flat_maps.amin(dim=1)
    return flat_masks.gather(1, peak[:, None]).squeeze(1) & ~constant


def thresholded_iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float | str = 0.5) -> torch.Tensor:
    """float (B,): IoU of ``maps >= threshold`` (a number, or 'mean': each map's own mean) with the masks."""
    flat_maps, flat_masks = maps.flatten(1), masks.flatten(1).bool()
    level = flat_maps.mean(dim=1, keepdim=True) if threshold == "mean" else torch.full_like(flat_maps[:, :1], float(threshold))
    predicted = flat_maps >= level
    intersection = (predicted & flat_masks).sum(dim=1).float()
    union = (predicted | flat_masks).sum(dim=1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))


def centre_prior(batch: int, size: int, sigma: float = 0.25) -> torch.Tensor:
    """A centred Gaussian map (B, 1, size, size) with std ``sigma`` x side, peak 1."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    gauss = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * sigma ** 2))
    return gauss.expand(batch, 1, size, size).clone()


def area_iou_ceiling(masks: torch.Tensor, share: float) -> float:
    """The mean IoU that a perfectly placed binary map keeping a ``share`` of each crop's pixels could reach:
    min(share, o) / max(share, o) for an object share o. A map whose area is bounded (an area prior or
    barrier) cannot beat it, whatever it learns."""
    objects = masks.flatten(1).float().mean(1)
    share_tensor = torch.full_like(objects, float(share))
    return float((torch.minimum(objects, share_tensor) / torch.maximum(objects, share_tensor).clamp(min=1e-12)).mean())


CEILING_SHARES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)


def localisation_metrics(maps: torch.Tensor, masks: torch.Tensor) -> dict:
    return {"pointing": float(pointing_hits(maps, masks).float().mean()),
            "iou_at_0.5": float(thresholded_iou(maps, masks, 0.5).mean()),
            "iou_at_mean": float(thresholded_iou(maps, masks, "mean").mean())}


@torch.no_grad()
def occlusion_drops(head: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor,
                    batch_size: int = 256) -> tuple[float, float]:
    """(object, background): the mean drop of a single-logit ``head``'s output per 100 erased pixels
    when an image's object pixels (``masks``) are set to grey (0 in [-1, 1]), and when its background
    pixels are. A head whose evidence lies on the object loses more per object pixel. Images whose
    object fills all or none of the crop are left out."""
    device = model_device(head)
    drops = []
    for start in range(0, len(images), batch_size):
        x, inside = images[start:start + batch_size].to(device), masks[start:start + batch_size].to(device).float()
        n_inside, n_outside = inside.flatten(1).sum(1), (1 - inside).flatten(1).sum(1)
        logit = head(x).flatten()
        object_erased, background_erased = head(x * (1 - inside)).flatten(), head(x * inside).flatten()
        keep = (n_inside > 0) & (n_outside > 0)
        drops.append(torch.stack([100 * (logit - object_erased) / n_inside.clamp(min=1),
                                  100 * (logit - background_erased) / n_outside.clamp(min=1)], 1)[keep].double().cpu())
    object_drop, background_drop = torch.cat(drops).mean(0).tolist()
    return object_drop, background_drop


def coco32_images_and_masks(root: str | Path | None, variant: str, split: str):
    """Images in [-1, 1], bool masks and class labels of COCO32 ``split`` ('train', 'test' or 'all')."""
    if split not in ("train", "test", "all"):
        raise UserError(f"--split {split!r} must be train, test or all")
    root = dataset_path("coco32", root)
    splits = load_coco32(root, 32, False, variant)
    parts = ("train", "test") if split == "all" else (split,)
    images = torch.cat([splits.train_images if part == "train" else splits.test_images for part in parts])
    labels = torch.cat([splits.train_labels if part == "train" else splits.test_labels for part in parts])
    masks = torch.cat([load_coco32_masks(root, part) for part in parts])
    return to_unit_range(images), masks, labels, splits.class_names


CSV_FIELDS = ("checkpoint", "model", "trained_on", "map", "split", "images", "pointing", "iou_at_0.5", "iou_at_mean",
              "occlusion_object", "occlusion_background")


def run_localisation(checkpoint_paths, data_root: str | Path | None, out_csv: Path, variant: str = "unmasked", split: str = "test",
                     head: str | None = None, command: str = "", batch_size: int = 256, device: str = "cpu") -> list[dict]:
    """Rows (one per checkpoint x map kind, plus the centre baseline); writes CSV and a Markdown table."""
    from ..utils.environment import machine_description

    checkpoints = load_checkpoints(checkpoint_paths, device)  # a bad checkpoint is refused before any data is read
    images, masks, _, class_names = coco32_images_and_masks(data_root, variant, split)
    if len(images) == 0:
        raise UserError(f"COCO32 at {dataset_path('coco32', data_root)} has no {split} crops")
    baselines = {"centre prior (Gaussian, sigma 0.25)": centre_prior(len(images), 32),
                 "whole image (constant map)": torch.ones(len(images), 1, 32, 32)}
    rows = [{"checkpoint": "-", "model": name, "trained_on": "-", "map": "baseline", "split": split,
             "images": len(images), **localisation_metrics(maps, masks)} for name, maps in baselines.items()]
    for checkpoint in checkpoints:
        path, on_device = checkpoint.path, model_device(checkpoint.model)
        if checkpoint.model.config.in_channels != images.shape[1]:
            raise UserError(f"{path} takes {checkpoint.model.config.in_channels}-channel images but COCO32 is RGB; "
                            "localise checkpoints trained on RGB data (coco32, cifar10, folder)")
        data = checkpoint.config.data
        trained_on = f"{data.name} class {data.normal_class}"
        kinds = {"gradcam": lambda x: gradcam_maps(checkpoint.model, x.to(on_device), head, "normal", where=str(path))}
        if _no_grad(checkpoint.model.attention_maps, images[:1].to(on_device)) is not None:
            kinds["attention"] = lambda x: _no_grad(checkpoint.model.attention_maps, x.to(on_device)).cpu()
        for kind, compute in kinds.items():
            maps = torch.cat([compute(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
            occlusion = {}
            if kind == "gradcam":
                drops = occlusion_drops(find_head(checkpoint.model, head, str(path)), images, masks, batch_size)
                occlusion = dict(zip(("occlusion_object", "occlusion_background"), drops))
            rows.append({"checkpoint": str(path), "model": checkpoint_label(checkpoint.config.model, path, wrap=None), "trained_on": trained_on,
                         "map": kind if kind == "attention" else f"Grad-CAM {head or next(iter(checkpoint.model.gradcam_heads()))}", "split": split,
                         "images": len(images), **localisation_metrics(maps, masks), **occlusion})
    with atomic_path(out_csv) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows])
    lines = [f"# Localisation on COCO32 ({variant} crops, {split} split, {len(images)} images, classes: "
             f"{', '.join(class_names)})", "",
             "| model | trained on | map | pointing game | IoU (map >= 0.5) | IoU (map >= its mean) "
             "| head's logit drop per 100 erased pixels: object / background |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        occlusion = (f"{row['occlusion_object']:.3f} / {row['occlusion_background']:.3f}"
                     if "occlusion_object" in row else "—")
        lines.append(f"| {row['model']} | {row['trained_on']} | {row['map']} | {row['pointing']:.3f} | "
                     f"{row['iou_at_0.5']:.3f} | {row['iou_at_mean']:.3f} | {occlusion} |")
    ceilings = ", ".join(f"{share:.1f}: {area_iou_ceiling(masks, share):.3f}" for share in CEILING_SHARES)
    object_share = float(masks.flatten(1).float().mean())
    lines += ["", "Pointing game: the map's maximum lies inside the true instance mask (constant maps miss); a maximum "
              f"on a random pixel hits with probability {object_share:.3f} (chance). "
              "IoU: the map thresholded, against the instance mask at 32x32. Logit drop: the Grad-CAM head's output on the "
              "crop minus its output with the object's pixels (or the background's) set to grey, per 100 erased pixels "
              "(higher on the object: the head's evidence lies on the object).", "",
              f"The objects cover {object_share:.3f} of a crop on average. The best IoU a "
              f"perfectly placed binary map keeping a fixed share of each crop could reach (share: IoU): {ceilings}; "
              "a map whose area is bounded below the objects' share cannot beat the constant map.", "",
              "Produced by:", "", f"    {command}", "", f"Machine: {machine_description(resolve_device(device))}", ""]
    atomic_write_text(Path(out_csv).with_suffix(".md"), "\n".join(lines))
    return rows


def _no_grad(function, images):
    with torch.no_grad():
        return function(images)
