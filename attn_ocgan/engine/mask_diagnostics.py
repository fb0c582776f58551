"""What a model's attention masks do, measured in one streamed pass per image set.

``mask_pass`` runs ``attention_maps`` once over a set of images, in batches (folder datasets can be
large), and keeps what every mask diagnostic needs: per-image statistics, per-group summaries
(area, decisiveness, mean mask on bright and dark pixels, template share), the mean mask and mean
image (the template another pass compares against) and, given a template, each image's distance
from it. ``evaluate_model`` makes one pass over the normal training images and one over the test
images; the functions below it (``mask_statistics``, ``mask_evidence_aucs``, ...) are the same
measurements for callers that hold one image set.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .auc import auc
from .device import model_device

MASK_STATISTICS_PER_IMAGE = ("area", "decisiveness", "on_bright_pixels")


@dataclasses.dataclass
class MaskPass:
    """One pass of a model's attention maps over N images of P pixels."""

    per_image: np.ndarray  # (N, 3): MASK_STATISTICS_PER_IMAGE, rounded to float32's precision
    statistics: dict[str, dict]  # per named group of images: see ``group_statistics``
    template: tuple[torch.Tensor, torch.Tensor]  # (P,) mean mask and (P,) mean grey image, float64
    deviations: np.ndarray | None  # (N, 2): squared distance of each mask and image from a given template


@torch.inference_mode()
def mask_pass(model, images: torch.Tensor, groups: dict[str, np.ndarray] | None = None,
              template: tuple[torch.Tensor, torch.Tensor] | None = None, batch_size: int = 1000) -> MaskPass | None:
    """Masks of ``images`` summarised in one pass; ``groups`` names boolean selections of the images
    to summarise apart (default: one group ``all``); with ``template`` (another pass's ``template``,
    e.g. of the normal training images) also each image's distance from it. None for a model
    without ``attention_maps``."""
    model.eval()
    device = model_device(model)
    n_images = len(images)
    groups = {"all": np.ones(n_images, dtype=bool)} if groups is None else {
        name: np.asarray(selected, dtype=bool) for name, selected in groups.items()}
    rows, sums, deviations = [], [], []  # per image: statistics; mask, |M - .5|, mask on bright, n bright
    pixel_sums = {name: 0.0 for name in groups}  # per group: per-pixel sum of masks, sum of squared masks
    square_sums = {name: 0.0 for name in groups}
    mask_total, image_total, n_pixels = 0.0, 0.0, 0
    for start in range(0, n_images, batch_size):
        batch = images[start:start + batch_size].to(device)
        masks = model.attention_maps(batch)
        if masks is None:
            return None
        bright = (batch.mean(1, keepdim=True) > 0).float().flatten(1)
        flat = masks.flatten(1)
        n_pixels = flat.shape[1]
        n_bright = bright.sum(1)
        on_bright = torch.where(n_bright > 0, (flat * bright).sum(1) / n_bright.clamp(min=1), torch.full_like(flat[:, 0], 0.5))
        rows.append(torch.stack([flat.mean(1), (flat - 0.5).abs().mean(1), on_bright], 1).double().cpu())
        sums.append(torch.stack([flat.sum(1), (flat - 0.5).abs().sum(1), (flat * bright).sum(1), n_bright], 1).double().cpu())
        flat, grey = flat.double().cpu(), batch.mean(1).flatten(1).double().cpu()
        for name, selected in groups.items():
            chosen = torch.from_numpy(selected[start:start + batch_size])
            pixel_sums[name] = pixel_sums[name] + flat[chosen].sum(0)
            square_sums[name] += float((flat[chosen] ** 2).sum())
        mask_total, image_total = mask_total + flat.sum(0), image_total + grey.sum(0)
        if template is not None:
            deviations.append(torch.stack([((flat - template[0]) ** 2).mean(1), ((grey - template[1]) ** 2).mean(1)], 1))
    if not rows:
        empty = {name: group_statistics(np.zeros((0, 4)), 0, 0.0, 0.0) for name in groups}
        return MaskPass(np.zeros((0, len(MASK_STATISTICS_PER_IMAGE))), empty, (torch.zeros(0), torch.zeros(0)), None)
    sums = torch.cat(sums).numpy()
    statistics = {name: group_statistics(sums[selected], n_pixels, pixel_sums[name], square_sums[name])
                  for name, selected in groups.items()}
    # rounded to float32's precision: summation-order noise must not rank images whose masks are equal
    return MaskPass(per_image=np.round(torch.cat(rows).numpy(), 6), statistics=statistics,
                    template=(mask_total / n_images, image_total / n_images),
                    deviations=np.round(torch.cat(deviations).numpy(), 6) if template is not None else None)


def group_statistics(sums: np.ndarray, n_pixels: int, pixel_sums, square_sum: float) -> dict:
    """One group's summary from its images' sums (mask, |M - .5|, mask on bright, n bright): mean
    mask (area), mean |M - 0.5| (decisiveness: 0 uniform grey, 0.5 binary), the mean mask on bright
    pixels (x > 0, e.g. the strokes of a digit) and on the others, and ``template_share``."""
    n = len(sums) * n_pixels
    if not n:
        return {"area": None, "decisiveness": None, "on_bright_pixels": None, "on_dark_pixels": None, "template_share": None}
    total, decisive, on_bright, n_bright = sums.sum(0).tolist()
    return {"area": total / n, "decisiveness": decisive / n, "on_bright_pixels": on_bright / max(n_bright, 1.0),
            "on_dark_pixels": (total - on_bright) / max(n - n_bright, 1.0),
            "template_share": template_share(pixel_sums, square_sum, len(sums))}


def template_share(pixel_sums, square_sum: float, n_images: int) -> float | None:
    """The share of the masks' variance that their mean mask (a fixed spatial template) explains:
    1 - (variance around the per-pixel mean) / (variance around the overall mean), from the
    per-pixel sums of N masks and the sum of their squares (1: the same mask on every image; 0:
    nothing image-independent); None when the masks do not vary."""
    if not n_images or not isinstance(pixel_sums, torch.Tensor):
        return None
    around_overall = square_sum - float(pixel_sums.sum()) ** 2 / (n_images * pixel_sums.numel())
    around_template = square_sum - float((pixel_sums ** 2).sum()) / n_images
    return None if around_overall <= 1e-12 else max(0.0, min(1.0, 1 - around_template / around_overall))


def evidence_aucs(test_pass: MaskPass, images: torch.Tensor, is_novel: np.ndarray) -> dict[str, float]:
    """Do the masks carry class evidence? The AUC of each per-image mask statistic used as a novelty
    score (0.5 when the masks look the same on normal and novel images; far from 0.5 either way when
    they differ), beside ``reference_bright_share``, the AUC of the images' bright-pixel share (on
    MNIST the ink: what a bounded-area mask that only followed the bright pixels would give). When
    the pass had a template (normal *training* images, never test images) also ``shape_deviation``,
    the AUC of each mask's distance from the template's mean mask (does the mask's *shape* differ on
    novel images?), beside ``reference_image_deviation``, the same for the image against the mean
    image (what a template of the images alone tells). A diagnostic, never a score."""
    aucs = {name: auc(is_novel, test_pass.per_image[:, index]) for index, name in enumerate(MASK_STATISTICS_PER_IMAGE)}
    aucs["reference_bright_share"] = auc(is_novel, (images.mean(1) > 0).double().flatten(1).mean(1).numpy())
    if test_pass.deviations is not None:
        aucs["shape_deviation"] = auc(is_novel, test_pass.deviations[:, 0])
        aucs["reference_image_deviation"] = auc(is_novel, test_pass.deviations[:, 1])
    return aucs


def mask_statistics(model, groups: dict[str, torch.Tensor], batch_size: int = 1000) -> dict | None:
    """``group_statistics`` of each named image set; None for a model without ``attention_maps``."""
    statistics = {}
    for name, images in groups.items():
        summary = mask_pass(model, images, batch_size=batch_size)
        if summary is None:
            return None
        statistics[name] = summary.statistics["all"]
    return statistics


def per_image_mask_statistics(model, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray | None:
    """(N, 3): each image's mask area, decisiveness and mean mask on its bright pixels (x > 0; 0.5
    where it has none), in ``MASK_STATISTICS_PER_IMAGE`` order. None for a model without masks."""
    summary = mask_pass(model, images, batch_size=batch_size)
    return None if summary is None else summary.per_image


def template_deviations(model, images: torch.Tensor, normal_images: torch.Tensor,
                        batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Per image (N,): the mean squared distance of its mask from the mean mask of ``normal_images``
    (normal *training* images: the template), and the same distance of the image itself (grey, mean
    over channels) from their mean image."""
    reference = mask_pass(model, normal_images, batch_size=batch_size)
    deviations = mask_pass(model, images, template=reference.template, batch_size=batch_size).deviations
    return deviations[:, 0], deviations[:, 1]


def mask_evidence_aucs(model, images: torch.Tensor, is_novel: np.ndarray,
                       normal_images: torch.Tensor | None = None) -> dict[str, float] | None:
    """``evidence_aucs`` of the masks of ``images``, with ``shape_deviation`` against the template of
    ``normal_images`` when given. None for a model without masks."""
    reference = mask_pass(model, normal_images) if normal_images is not None and len(normal_images) else None
    summary = mask_pass(model, images, template=None if reference is None else reference.template)
    return None if summary is None else evidence_aucs(summary, images, is_novel)
