"""Pseudo-anomalies made from normal images alone: their tiles shuffled, or a patch of each pasted
elsewhere in it (CutPaste). The attention model's guide trains on them, and score weights can be
chosen on them (``engine/score_weights.py``); nothing of another image or class enters.
"""
from __future__ import annotations

import torch

PSEUDO_ANOMALIES = ("cutpaste", "shuffle")


def patch_shuffle(images: torch.Tensor, patch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pseudo-anomalies that keep an image's pixels but break its layout: the (patch x patch)
    tiles of each image are permuted at random. (B, C, H, W) -> (B, C, H, W)."""
    batch, channels, height, width = images.shape
    rows, cols = height // patch, width // patch
    tiles = images[:, :, : rows * patch, : cols * patch].unfold(2, patch, patch).unfold(3, patch, patch)
    tiles = tiles.reshape(batch, channels, rows * cols, patch, patch)
    order = torch.argsort(torch.rand(batch, rows * cols, generator=generator, device=images.device), dim=1)
    tiles = torch.gather(tiles, 2, order[:, None, :, None, None].expand_as(tiles))
    shuffled = tiles.reshape(batch, channels, rows, cols, patch, patch).permute(0, 1, 2, 4, 3, 5)
    out = images.clone()
    out[:, :, : rows * patch, : cols * patch] = shuffled.reshape(batch, channels, rows * patch, cols * patch)
    return out


def cut_paste(images: torch.Tensor, generator: torch.Generator | None = None, min_share: float = 0.15,
              max_share: float = 0.35) -> tuple[torch.Tensor, torch.Tensor]:
    """CutPaste pseudo-anomalies (Li et al., CVPR 2021): a square patch of each image, side a
    ``min_share``..``max_share`` share of the image, pasted at another random place of the same image.
    Returns (images, region masks (B, 1, H, W): 1 where the patch was pasted)."""
    batch, _, height, width = images.shape
    out, regions = images.clone(), torch.zeros(batch, 1, height, width, device=images.device)
    draw = torch.rand(batch, 5, generator=generator).tolist()
    for index, (size, source_y, source_x, target_y, target_x) in enumerate(draw):
        side = max(1, int(round((min_share + (max_share - min_share) * size) * min(height, width))))
        sy, sx = int(source_y * (height - side + 1)), int(source_x * (width - side + 1))
        ty, tx = int(target_y * (height - side + 1)), int(target_x * (width - side + 1))
        out[index, :, ty:ty + side, tx:tx + side] = images[index, :, sy:sy + side, sx:sx + side]
        regions[index, :, ty:ty + side, tx:tx + side] = 1.0
    return out, regions


def make_pseudo_anomalies(images: torch.Tensor, kind: str, generator: torch.Generator | None = None,
                          shuffle_patch: int = 8) -> torch.Tensor:
    """One pseudo-anomaly per image: ``cutpaste`` (a patch of the image pasted elsewhere in it) or
    ``shuffle`` (its ``shuffle_patch`` tiles permuted), drawn with ``generator`` (None: torch's global one)."""
    if kind == "cutpaste":
        return cut_paste(images, generator)[0]
    if kind == "shuffle":
        return patch_shuffle(images, shuffle_patch, generator)
    raise ValueError(f"unknown pseudo-anomaly {kind!r}; known: {', '.join(PSEUDO_ANOMALIES)}")
