"""An episode's attention as the attention dashboard shows it: per step, the pooling weights
over the observation's tokens (bars over features, or a heatmap over the grid or frame) and
the weights over the memory's steps."""

import numpy as np

from attn_agents.tokenizer_factory import TokenLayout


def memory_labels(k: int) -> list[str]:
    """The K memory slots, oldest first as `Agent.act` orders them: t-(K-1), ..., t-1, t."""
    return [f"t-{k - 1 - i}" if i < k - 1 else "t" for i in range(k)]


def episode_views(layout: TokenLayout | None, token_weights, memory_weights) -> dict:
    """The keyword arguments of `attn_core.attention_record.make_record` (after its name) and
    of `SummaryWriter.attention` (after its tag and step) for the steps of one episode.

    Every step is a query (labelled "step i", 0-based), so the dashboard's step picker walks
    through the episode.

    Args:
        layout: The tokenizer's `TokenLayout` (None for the MLP policy, which has no token
            attention).
        token_weights: [n, T] pooling weights over the tokens at each of n steps (T may be
            0: the MLP policy).
        memory_weights: [n, K] weights over the memory at each step, oldest first (K is 0
            without memory).

    Returns:
        `{"tokens": ..., "memory": ...}`, each present only when its weights are: "tokens"
        labels its keys with the layout's labels (feature names, grid cells "c{r},{c}" or
        patch positions "p{r},{c}") in the "bars" view, or the "grid" view with
        `key_grid` = the layout's grid shape; "memory" labels its keys with the steps back
        (`memory_labels`) in the "matrix" view.

    Raises:
        ValueError: If there are no steps, the two step counts differ, or the token weights
            do not match the layout.
    """
    token_weights = np.asarray(token_weights, np.float32)
    memory_weights = np.asarray(memory_weights, np.float32)
    if (token_weights.ndim != 2 or memory_weights.ndim != 2 or not len(token_weights)
            or len(token_weights) != len(memory_weights)):
        raise ValueError("Expected token weights [n, T] and memory weights [n, K] of the same "
                         f"n > 0 steps. Received: shapes {token_weights.shape} and "
                         f"{memory_weights.shape}")
    steps = [f"step {i}" for i in range(len(token_weights))]
    views = {}
    if layout is not None and token_weights.shape[1]:
        if token_weights.shape[1] != len(layout.labels):
            raise ValueError(f"Expected one token weight per label of the layout "
                             f"({len(layout.labels)}). Received: shape {token_weights.shape}")
        views["tokens"] = {"weights": token_weights, "query_labels": steps,
                           "key_labels": list(layout.labels)}
        if layout.kind == "grid":
            views["tokens"] |= {"view": "grid", "key_grid": tuple(layout.grid_shape)}
        else:
            views["tokens"] |= {"view": "bars"}
    if memory_weights.shape[1]:
        views["memory"] = {"weights": memory_weights, "query_labels": steps,
                           "key_labels": memory_labels(memory_weights.shape[1]),
                           "view": "matrix"}
    return views
