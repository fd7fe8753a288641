"""Pictures of where the agent looks: bars over features, heatmaps over frames and grids,
and weights over the memory steps."""

import pathlib

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attn_agents.attention_view import memory_labels
from attn_agents.tokenizer_factory import TokenLayout
from attn_core.heatmap import figure_to_png_bytes


def _frame_image(obs):
    """An [H, W] or [H, W, 3] picture of an image observation (the last frame of a stack)."""
    obs = np.asarray(obs)
    if obs.ndim == 3 and obs.shape[-1] not in (1, 3):
        obs = obs[..., -1]
    if obs.ndim == 3 and obs.shape[-1] == 1:
        obs = obs[..., 0]
    return obs


def plot_agent_attention(layout: TokenLayout | None, token_weights, memory_weights=None,
                         observation=None, title=None) -> Figure:
    """Draws one step's attention.

    Args:
        layout: The tokenizer's `TokenLayout` (None for the MLP policy: memory only).
        token_weights: [T] pooling weights over the tokens (may be empty).
        memory_weights: Optional [K] weights over the memory, oldest first, current last.
        observation: The step's observation: an image observation is drawn under the
            heatmap of a `"grid"` layout with a patch size above 1.
        title: Figure title.

    Returns:
        A Matplotlib `Figure` on an Agg canvas.

    Raises:
        ValueError: If there is nothing to draw, or the weights do not match the layout.
    """
    token_weights = np.asarray(token_weights if token_weights is not None else [], np.float32)
    has_tokens = layout is not None and token_weights.size > 0
    has_memory = memory_weights is not None and np.size(memory_weights) > 0
    if not (has_tokens or has_memory):
        raise ValueError("Expected token or memory attention weights to draw. "
                         f"Received: token_weights.shape={token_weights.shape}, "
                         f"memory_weights={memory_weights}")
    if has_tokens and token_weights.shape != (len(layout.labels),):
        raise ValueError(f"Expected one weight per token ({len(layout.labels)}). "
                         f"Received: token_weights.shape={token_weights.shape}")
    panels = int(has_tokens) + int(has_memory)
    fig = Figure(figsize=(5.5 * panels, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    column = 1
    if has_tokens:
        ax = fig.add_subplot(1, panels, column)
        column += 1
        if layout.kind == "grid":
            h, w = layout.grid_shape
            grid = token_weights[:h * w].reshape(h, w)
            extras = [f"{label} {weight:.2f}" for label, weight
                      in zip(layout.labels[h * w:], token_weights[h * w:], strict=True)]
            if observation is not None and layout.cell_size != (1, 1):
                frame = _frame_image(observation)
                ph, pw = layout.cell_size
                ax.imshow(frame, cmap="gray" if frame.ndim == 2 else None)
                ax.imshow(grid, cmap="inferno", alpha=0.55, interpolation="nearest",
                          extent=(-0.5, w * pw - 0.5, h * ph - 0.5, -0.5))
                ax.set_xlim(-0.5, frame.shape[1] - 0.5)
                ax.set_ylim(frame.shape[0] - 0.5, -0.5)
            else:
                image = ax.imshow(grid, cmap="viridis")
                fig.colorbar(image, ax=ax)
            ax.set_title("attention over the " + ("frame" if layout.cell_size != (1, 1)
                                                  else "grid")
                         + (f" ({', '.join(extras)})" if extras else ""), fontsize=9)
        else:
            ax.bar(range(len(token_weights)), token_weights, color="tab:blue")
            ax.set_xticks(range(len(token_weights)), layout.labels, rotation=90)
            ax.set_ylabel("attention weight")
            ax.set_title("attention over the observation", fontsize=9)
    if has_memory:
        memory_weights = np.asarray(memory_weights, np.float32)
        k = memory_weights.shape[0]
        ax = fig.add_subplot(1, panels, column)
        ax.bar(range(k), memory_weights, color="tab:orange")
        ax.set_xticks(range(k), memory_labels(k))
        ax.set_ylabel("attention weight")
        ax.set_title("attention over the memory", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_agent_attention(path, *args, **kwargs) -> pathlib.Path:
    """`plot_agent_attention(*args, **kwargs)` written as a PNG at `path` (dirs created)."""
    png = figure_to_png_bytes(plot_agent_attention(*args, **kwargs))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
