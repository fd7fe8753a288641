"""Figures of where SAGAN pixels look: attention heatmaps overlaid on generated images."""

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def default_queries(side: int) -> list[tuple[int, int]]:
    """Four query pixels (row, column) of a side×side attention map: the centre and three
    off-centre points."""
    q = side // 4
    return [(side // 2, side // 2), (q, q), (q, side - 1 - q), (side - 1 - q, side // 2)]


def attention_heatmap(attention_row, side: int, resolution: int) -> np.ndarray:
    """One query's attention [P'] over the pooled keys → a [R, R] map (nearest upsampling).

    Args:
        attention_row: [P'] with P' = (side/2)² (pooled) or side² (not pooled).
        side: the side of the attention block's feature map.
        resolution: the image side R.
    """
    attention_row = np.asarray(attention_row, np.float32)
    key_side = int(round(math.sqrt(attention_row.size)))
    heat = attention_row.reshape(key_side, key_side)
    repeat = resolution // key_side
    return np.kron(heat, np.ones((repeat, repeat), np.float32))


def plot_attention_overlay(images, attention, queries=None, title=None) -> Figure:
    """For each image (a row): the image with the query pixels marked, then, per query, the
    image overlaid with that pixel's attention heatmap.

    Letters: S samples, R resolution, C channels, P = side² queries, P' keys.

    Args:
        images: float [S, R, R, C] in [-1, 1].
        attention: [S, P, P'] from `Generator(..., return_attention_scores=True)`.
        queries: (row, column) pairs in the side×side attention grid (default
            `default_queries`).
        title: an optional figure title.

    Returns:
        A Matplotlib `Figure` on an Agg canvas.

    Raises:
        ValueError: when the shapes do not agree.
    """
    images = np.asarray(images, np.float32)
    attention = np.asarray(attention, np.float32)
    if images.ndim != 4 or attention.ndim != 3 or len(images) != len(attention):
        raise ValueError("Expected images [S, R, R, C] and attention [S, P, P']. Received: "
                         f"images.shape={images.shape}, attention.shape={attention.shape}")
    side = int(round(math.sqrt(attention.shape[1])))
    resolution = images.shape[1]
    queries = queries or default_queries(side)
    scale = resolution / side
    colors = ["red", "cyan", "yellow", "lime", "magenta", "orange"]
    rows, cols = len(images), 1 + len(queries)
    fig = Figure(figsize=(1.6 * cols, 1.6 * rows + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(fig)
    for s in range(rows):
        picture = (images[s, ..., 0] if images.shape[-1] == 1 else images[s]) * 0.5 + 0.5
        cmap = "gray" if images.shape[-1] == 1 else None
        ax = fig.add_subplot(rows, cols, s * cols + 1)
        ax.imshow(np.clip(picture, 0, 1), cmap=cmap, vmin=0, vmax=1)
        for i, (qy, qx) in enumerate(queries):
            ax.plot((qx + 0.5) * scale - 0.5, (qy + 0.5) * scale - 0.5, "o",
                    color=colors[i % len(colors)], markersize=4)
        ax.set_axis_off()
        if s == 0:
            ax.set_title("sample", fontsize=8)
        for i, (qy, qx) in enumerate(queries):
            heat = attention_heatmap(attention[s, qy * side + qx], side, resolution)
            ax = fig.add_subplot(rows, cols, s * cols + 2 + i)
            ax.imshow(np.clip(picture, 0, 1), cmap=cmap, vmin=0, vmax=1)
            ax.imshow(heat, cmap="jet", alpha=0.5, interpolation="bilinear")
            ax.plot((qx + 0.5) * scale - 0.5, (qy + 0.5) * scale - 0.5, "o",
                    color=colors[i % len(colors)], markersize=5, markeredgecolor="white")
            ax.set_axis_off()
            if s == 0:
                ax.set_title(f"query ({qy},{qx})", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
