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
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(
            "Expected `weights` to have rank 2, shape [T_q, T_k]. "
            f"Received: weights.shape={weights.shape}"
        )
    t_q, t_k = weights.shape
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


def figure_to_png_bytes(fig: Figure) -> bytes:
    """Renders `fig` to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


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
    png = figure_to_png_bytes(plot_attention(weights, x_labels, y_labels, title))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
