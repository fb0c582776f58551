"""Matplotlib figures written atomically (Agg backend, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ..utils.io import atomic_path  # noqa: E402


def save_figure(figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def save_roc_curve(path: Path, is_novel, scores, auc_value: float, title: str = "") -> None:
    false_positive, true_positive, _ = roc_curve(is_novel, scores)
    figure, axis = plt.subplots(figsize=(4.2, 4.2))
    axis.plot(false_positive, true_positive, lw=2, label=f"AUC = {auc_value:.4f}")
    axis.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    axis.set(xlabel="false positive rate (normal flagged novel)", ylabel="true positive rate (novel detected)", title=title or "ROC")
    axis.legend(loc="lower right")
    save_figure(figure, path)


def draw_score_histogram(axis, groups: dict[str, np.ndarray], title: str = "", score_name: str | None = None) -> None:
    """Overlaid, density-normalised histograms of novelty scores per group on ``axis`` (log-spaced
    bins when every score is positive, e.g. reconstruction errors); ``score_name`` (the model's
    ``score_name``) labels the axis."""
    values = np.concatenate([v for v in groups.values() if len(v)])
    positive = values.min() > 0  # reconstruction errors: log-spaced bins; normalised scores can be negative
    if positive:
        bins = np.geomspace(values.min(), max(values.max(), values.min() * 1.01) * 1.0001, 50)
    else:
        bins = np.linspace(values.min(), max(values.max(), values.min() + 1e-6), 50)
    for name, group in groups.items():
        if len(group):
            axis.hist(group, bins=bins, density=True, alpha=0.5, label=f"{name} (n={len(group)})")
    if positive:
        axis.set_xscale("log")
    xlabel = f"novelty score ({score_name})" if score_name else "novelty score"
    axis.set(xlabel=xlabel, ylabel="density", title=title or "score distribution")
    axis.legend(fontsize=8)


def save_score_histogram(path: Path, groups: dict[str, np.ndarray], title: str = "", score_name: str | None = None) -> None:
    """One model's score distributions per group (``draw_score_histogram``)."""
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    draw_score_histogram(axis, groups, title, score_name)
    save_figure(figure, path)


def save_score_histograms(path: Path, panels: dict[str, dict[str, np.ndarray]], title: str = "",
                          score_names: dict[str, str] | None = None) -> None:
    """Several models side by side: ``{panel title: {group: scores}}``, one histogram panel each;
    ``score_names``: {panel title: what its score measures}."""
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for axis, (name, groups) in zip(axes[0], panels.items()):
        draw_score_histogram(axis, groups, name, (score_names or {}).get(name))
        axis.set_xlabel(axis.get_xlabel().replace("novelty score", "score"), fontsize=8)
    if title:
        figure.suptitle(title, y=1.02)
    figure.tight_layout()
    save_figure(figure, path)


def save_image_rows(path: Path, columns: dict[str, list[tuple[str, "torch.Tensor"]]], title: str = "") -> None:
    """Labelled image rows side by side: ``{column title: [(row label, images (n, C, H, W) in [-1, 1]), ...]}``.

    Used for attention masks: per column (normal / novel test images) rows input, mask,
    masked input and the reconstructions of both GANs.
    """
    from torchvision.utils import make_grid

    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 0.55 * max(len(r) for r in columns.values()) + 0.6))
    axes = np.atleast_1d(axes)
    for index, (axis, (column, rows)) in enumerate(zip(axes, columns.items())):
        n = len(rows[0][1])
        grid = make_grid(torch.cat([images.float() for _, images in rows]), nrow=n, normalize=True, value_range=(-1, 1), pad_value=1)
        axis.imshow(grid.permute(1, 2, 0).numpy())
        side = grid.shape[1] / len(rows)
        # Row labels once, on the left: every column has the same rows.
        axis.set_yticks([side * (row + 0.5) for row in range(len(rows))], [label for label, _ in rows] if index == 0 else [])
        axis.set_xticks([])
        axis.set_title(column)
    if title:
        figure.suptitle(title)
    save_figure(figure, path)


def save_image_table(path: Path, panels: dict[str, tuple[list[str], "torch.Tensor"]], title: str = "") -> "torch.Tensor":
    """Panels side by side, each a table of tiles: one row per image, one column per named view.

    ``panels``: ``{panel title: (column names, tiles (rows, columns, 3, H, W) in [0, 1])}``.
    Returns the first panel's grid (3, H', W') in [0, 1] (e.g. for TensorBoard).
    """
    from torchvision.utils import make_grid

    grids = {}
    for name, (columns, tiles) in panels.items():
        rows, n_columns = tiles.shape[:2]
        grids[name] = (columns, make_grid(tiles.reshape(rows * n_columns, *tiles.shape[2:]), nrow=n_columns,
                                          pad_value=1.0))
    tallest = max(grid.shape[1] for _, grid in grids.values())
    tile_inches = 1.25  # per 32-pixel tile: room for three-line column labels
    figure, axes = plt.subplots(1, len(grids), figsize=(tile_inches * sum(len(c) + 0.4 for c, _ in grids.values()),
                                                        1.4 + tile_inches * tallest / 34), squeeze=False)
    for axis, (name, (columns, grid)) in zip(axes[0], grids.items()):
        axis.imshow(grid.permute(1, 2, 0).clamp(0, 1).numpy())
        width = grid.shape[2] / len(columns)
        axis.set_xticks([width * (index + 0.5) for index in range(len(columns))], columns, fontsize=6.5)
        axis.xaxis.tick_top()
        axis.set_yticks([])
        axis.set_title(name, pad=6)  # matplotlib already places the title above the top tick labels
    if title:
        figure.suptitle(title, y=1.03, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path)
    return next(iter(grids.values()))[1]


def method_colours(panels: dict) -> dict[str, tuple]:
    """One colour per method across all panels: our rows by model name (every tag of one model shares
    it), published rows by their label; assigned in order of first appearance."""
    keys = []
    for ours, published, _ in panels.values():
        keys += [model for _, model, _ in ours] + list(published)
    palette = list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors)
    return {key: palette[i % len(palette)] for i, key in enumerate(dict.fromkeys(keys))}


def save_comparison_plot(path: Path, panels: dict) -> None:
    """One panel per dataset: per-class AUC of each of our rows (filled markers, lines) and of the
    published rows (hollow markers). ``panels``: {dataset: ([(label, model, {class: auc})], {name: [auc]},
    class_names)}. A method keeps its colour in every panel; a model's second tag in a panel is dashed."""
    colours = method_colours(panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for axis, (dataset, (ours, published, names)) in zip(axes[0], panels.items()):
        x = np.arange(len(names))
        drawn = set()
        for label, model, per_class in ours:
            classes = sorted(per_class)
            style = "o--" if model in drawn else "o-"
            drawn.add(model)
            axis.plot(classes, [per_class[k] for k in classes], style, lw=1.5, color=colours[model], label=label)
        for label, values in published.items():
            axis.plot(x, values, linestyle="none", marker="s", markerfacecolor="none", color=colours[label], label=label)
        axis.set_xticks(x, names, rotation=45 if max(len(n) for n in names) > 2 else 0)
        axis.set(title=dataset, xlabel="normal class", ylabel="ROC AUC")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: never over the points
    save_figure(figure, path)


def save_component_ratio_plot(path: Path, points: dict[str, list[tuple[str, float, float]]], title: str = "") -> None:
    """One panel per score component: each protocol cell at (novel / normal ratio of the component's
    mean, the component's AUC alone), labelled with its class. ``points``: {component: [(class label,
    ratio, auc)]}. Cells near ratio 1 and AUC .5 are those where the component does not tell novel
    images from normal ones (for a reconstruction error: the model copies novel images too)."""
    figure, axes = plt.subplots(1, len(points), figsize=(4.4 * len(points), 3.8), squeeze=False)
    for axis, (component, cells) in zip(axes[0], points.items()):
        ratios = np.array([ratio for _, ratio, _ in cells])
        axis.scatter(ratios, [auc for _, _, auc in cells], s=22)
        for label, ratio, auc in cells:
            axis.annotate(label, (ratio, auc), textcoords="offset points", xytext=(4, 3), fontsize=7)
        axis.axvline(1.0, color="k", ls="--", lw=1, label="novel = normal")
        axis.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
        finite = ratios[np.isfinite(ratios)]
        if len(finite) and finite.min() > 0:  # a ratio: 2x and 0.5x equally far from 1
            axis.set_xscale("log")
            axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            # 1 always in view, at least 0.5-2 wide, room for the labels right of the points
            axis.set_xlim(min(finite.min() / 1.3, 0.5), max(finite.max() * 1.6, 2.0))
        else:
            axis.margins(x=0.2)
        axis.set(title=component, xlabel="mean on novel / mean on normal test images", ylabel="AUC of the component alone",
                 ylim=(0.0, 1.02))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
