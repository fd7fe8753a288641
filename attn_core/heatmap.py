"""Attention heatmaps rendered with Matplotlib's Agg canvas (no pyplot, no GUI, no global state)."""

import io
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_attention(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Draws one attention matrix as a heatmap with a colorbar.

    Args:
        weights: Array-like of shape `[T_q, T_k]`: row `i` is the attention distribution of
            query (target token) `i` over the keys (source tokens).
        x_labels: Optional `T_k` key/source labels, drawn along the top.
        y_labels: Optional `T_q` query/target labels, drawn along the left side.
        title: Optional title.

    Returns:
        A `matplotlib.figure.Figure` on an Agg canvas. It is not registered with pyplot, so it
        is freed when no longer referenced.

    Raises:
        ValueError: If `weights` is not 2-D or a label list has the wrong length.
    """
    weights = _checked(weights, 2, "[T_q, T_k]", x_labels, y_labels)
    t_q, t_k = weights.shape
    fig = Figure(figsize=(min(2.0 + 0.4 * t_k, 20.0), min(1.5 + 0.4 * t_q, 20.0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.matshow(weights, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax)
    if x_labels is not None:
        ax.set_xticks(range(t_k), [str(label) for label in x_labels], rotation=90)
    if y_labels is not None:
        ax.set_yticks(range(t_q), [str(label) for label in y_labels])
    ax.set_xlabel("keys (source)")
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("queries (target)")
    if title:
        ax.set_title(title, pad=12)
    fig.tight_layout()
    return fig


def _checked(weights, rank, shape, x_labels, y_labels):
    """`weights` as float32, checked to have `rank` and labels that fit its last two axes."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != rank:
        raise ValueError(
            f"Expected `weights` to have rank {rank}, shape {shape}. "
            f"Received: weights.shape={weights.shape}"
        )
    t_q, t_k = weights.shape[-2:]
    if x_labels is not None and len(x_labels) != t_k:
        raise ValueError(
            f"Expected `x_labels` to have one label per key (T_k={t_k}). "
            f"Received: len(x_labels)={len(x_labels)}"
        )
    if y_labels is not None and len(y_labels) != t_q:
        raise ValueError(
            f"Expected `y_labels` to have one label per query (T_q={t_q}). "
            f"Received: len(y_labels)={len(y_labels)}"
        )
    return weights


def plot_attention_grid(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    title: str | None = None,
    row_name: str = "layer",
    column_name: str = "head",
) -> Figure:
    """Draws a grid of attention matrices, e.g. every layer (rows) and head (columns) of a
    Transformer's cross-attention, on one color scale (0 to the largest weight).

    Args:
        weights: Array-like of shape `[R, C, T_q, T_k]`: cell (r, c) is a `[T_q, T_k]`
            matrix as for `plot_attention`.
        x_labels: Optional `T_k` key/source labels, drawn along the top of the first row.
        y_labels: Optional `T_q` query/target labels, drawn along the left of the first
            column.
        title: Optional title.
        row_name, column_name: What a row and a column are, for the cells' titles
            ("layer 0, head 2"; 0-based).

    Returns:
        A `matplotlib.figure.Figure` on an Agg canvas, not registered with pyplot.

    Raises:
        ValueError: If `weights` is not 4-D or a label list has the wrong length.
    """
    weights = _checked(weights, 4, "[R, C, T_q, T_k]", x_labels, y_labels)
    rows, columns, t_q, t_k = weights.shape
    # Each cell gets about the room of a single heatmap, the whole figure at most 40 inches.
    cell_w, cell_h = min(1.0 + 0.3 * t_k, 8.0), min(1.0 + 0.3 * t_q, 8.0)
    fig = Figure(figsize=(min(2.5 + cell_w * columns, 40.0), min(2.0 + cell_h * rows, 40.0)),
                 dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    top = float(weights.max()) if weights.size else 1.0
    image = None
    for r in range(rows):
        for c in range(columns):
            ax = axes[r, c]
            image = ax.matshow(weights[r, c], cmap="viridis", aspect="auto", vmin=0.0,
                               vmax=top or 1.0)
            ax.set_title(f"{row_name} {r}, {column_name} {c}", fontsize=8, pad=4)
            if r == 0 and x_labels is not None:
                ax.set_xticks(range(t_k), [str(label) for label in x_labels], rotation=90,
                              fontsize=7)
            else:
                ax.set_xticks([])
            if c == 0 and y_labels is not None:
                ax.set_yticks(range(t_q), [str(label) for label in y_labels], fontsize=7)
            else:
                ax.set_yticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def figure_to_png_bytes(fig: Figure) -> bytes:
    """Renders `fig` to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _write_png(path, figure) -> pathlib.Path:
    """Writes `figure` as a PNG at `path` (parent directories created); returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(figure_to_png_bytes(figure))
    return path


def save_attention_png(
    path: str | pathlib.Path,
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> pathlib.Path:
    """Renders `weights` (`[T_q, T_k]`) with `plot_attention` and writes it as a PNG.

    Args:
        path: Destination file; parent directories are created.
        weights, x_labels, y_labels, title: As for `plot_attention`.

    Returns:
        The path written.

    Raises:
        ValueError: As for `plot_attention`.
    """
    return _write_png(path, plot_attention(weights, x_labels, y_labels, title))


def save_attention_grid_png(
    path: str | pathlib.Path,
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> pathlib.Path:
    """Renders `weights` (`[R, C, T_q, T_k]`) with `plot_attention_grid` and writes it as a
    PNG (parent directories created); returns the path.

    Raises:
        ValueError: As for `plot_attention_grid`.
    """
    return _write_png(path, plot_attention_grid(weights, x_labels, y_labels, title))
