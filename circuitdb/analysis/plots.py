"""Pictures people would rather look at than read: Venn diagrams (2-3 sets), UpSet plots, similarity heatmaps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from circuitdb.errors import CircuitdbError


def venn_plot(labels: list[str], regions: pd.DataFrame, path: Path, title: str = "") -> Path:
    """A Venn diagram for 2-3 sets (region sizes from the venn query), an UpSet plot for more."""
    counts = dict(zip(regions["region"], regions["count"]))
    fig = plt.figure(figsize=(6, 5))
    if len(labels) in (2, 3):
        from matplotlib_venn import venn2, venn3

        order = [1, 2, 3] if len(labels) == 2 else [1, 2, 3, 4, 5, 6, 7]
        subsets = [counts.get(mask, 0) for mask in order]
        (venn2 if len(labels) == 2 else venn3)(subsets=subsets, set_labels=labels)
    else:
        plt.close(fig)
        return upset_plot(labels, regions, path, title)
    plt.title(title)
    return _save(fig, path)


def upset_plot(labels: list[str], regions: pd.DataFrame, path: Path, title: str = "") -> Path:
    """UpSet plot of the non-empty regions (any number of sets)."""
    import upsetplot

    rows = regions[regions["count"] > 0]
    index = pd.MultiIndex.from_tuples([tuple(bool(m >> i & 1) for i in range(len(labels))) for m in rows["region"]],
                                      names=labels)
    series = pd.Series(list(rows["count"]), index=index)
    fig = plt.figure(figsize=(max(6, 1.2 * len(rows)), 5))
    upsetplot.plot(series, fig=fig, sort_by="cardinality", show_counts=True, element_size=None)
    fig.suptitle(title)
    return _save(fig, path)


def heatmap(matrix: pd.DataFrame, path: Path, title: str = "") -> Path:
    """The similarity matrix as an annotated heatmap."""
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(2 + 0.6 * n, 1.5 + 0.6 * n))
    image = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), matrix.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), matrix.index)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                value = matrix.iat[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        plt.close(fig)
        raise CircuitdbError(f"{path}: plot format must be .png, .svg or .pdf")
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return path
