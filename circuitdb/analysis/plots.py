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
    """UpSet plot of the non-empty regions, largest first: bars of region size over a dot matrix of its sets.

    Drawn with matplotlib directly: upsetplot 0.9 fails on pandas 3 (its colours come back as NaN).
    """
    rows = regions[regions["count"] > 0].sort_values(["count", "region"], ascending=[False, True])
    n_sets, n_rows = len(labels), len(rows)
    fig, (bars, grid) = plt.subplots(
        2,
        1,
        figsize=(max(6.0, 0.45 * n_rows + 2), 2.5 + 0.35 * n_sets),
        sharex=True,
        gridspec_kw={"height_ratios": [3, max(1, 0.35 * n_sets)]},
    )
    xs = range(n_rows)
    bars.bar(xs, rows["count"], color="#444444")
    for x, count in zip(xs, rows["count"]):
        bars.text(x, count, str(count), ha="center", va="bottom", fontsize=8)
    bars.set_ylabel("members")
    bars.spines[["top", "right"]].set_visible(False)
    for x, mask in zip(xs, rows["region"]):
        inside = [i for i in range(n_sets) if mask >> i & 1]
        grid.scatter([x] * n_sets, range(n_sets), color="#dddddd", s=40)
        grid.scatter([x] * len(inside), inside, color="#222222", s=40)
        if len(inside) > 1:
            grid.plot([x, x], [min(inside), max(inside)], color="#222222")
    grid.set_yticks(range(n_sets), labels)
    grid.set_xticks([])
    grid.set_ylim(-0.5, n_sets - 0.5)
    grid.invert_yaxis()
    grid.spines[:].set_visible(False)
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


def curve_plot(points: pd.DataFrame, labels: dict[str, str], path: Path, title: str = "") -> Path:
    """Faithfulness curves (rows run, percent, faithfulness) on a log axis of edge percent, one line per run named
    by `labels`."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for run, label in labels.items():
        rows = points[points.run == run].sort_values("percent")
        ax.plot(rows.percent, rows.faithfulness, marker="o", label=label)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("edges kept (% of the ranked edges)")
    ax.set_ylabel("normalised faithfulness")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        plt.close(fig)
        raise CircuitdbError(f"{path}: plot format must be .png, .svg or .pdf")
    fig.savefig(path, bbox_inches="tight", dpi=120)
    plt.close(fig)
    return path
