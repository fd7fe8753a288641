"""Tests for attn_core.heatmap."""

import struct

import numpy as np
import pytest
from matplotlib.figure import Figure

from attn_core.heatmap import (
    figure_to_png_bytes,
    plot_attention,
    plot_attention_grid,
    save_attention_grid_png,
    save_attention_png,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _weights(t_q=3, t_k=4):
    logits = np.random.default_rng(0).normal(size=(t_q, t_k))
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def test_plot_attention_labels_and_colorbar():
    fig = plot_attention(_weights(), ["a", "b", "c", "d"], ["x", "y", "z"], title="step 1")
    assert isinstance(fig, Figure)
    ax, colorbar_ax = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    assert ax.get_title() == "step 1"
    assert ax.images[0].get_array().shape == (3, 4)
    assert colorbar_ax is not ax


def test_save_attention_png_writes_valid_png(tmp_path):
    path = save_attention_png(tmp_path / "sub" / "attn.png", _weights(), list("abcd"), list("xyz"))
    data = path.read_bytes()
    width, height = _png_size(data)
    assert width > 0 and height > 0
    assert _png_size(figure_to_png_bytes(plot_attention(_weights(2, 2)))) > (0, 0)


def test_rank_and_label_errors():
    with pytest.raises(ValueError, match=r"rank 2.*Received: weights.shape=\(2, 3, 4\)"):
        plot_attention(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"x_labels.*T_k=4.*Received: len\(x_labels\)=3"):
        plot_attention(_weights(), x_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"y_labels.*T_q=3.*Received: len\(y_labels\)=4"):
        plot_attention(_weights(), y_labels=["a", "b", "c", "d"])


def test_grid_has_a_cell_per_layer_and_head_on_one_scale(tmp_path):
    weights = np.stack([np.stack([_weights() * (r + 1) for _ in range(3)]) for r in range(2)])
    fig = plot_attention_grid(weights, list("abcd"), list("xyz"), title="sentence 0")
    cells = [ax for ax in fig.axes if ax.images]
    assert len(cells) == 2 * 3 and len(fig.axes) == 2 * 3 + 1  # the cells and a colorbar
    assert [ax.get_title() for ax in cells[:4]] == ["layer 0, head 0", "layer 0, head 1",
                                                    "layer 0, head 2", "layer 1, head 0"]
    assert [t.get_text() for t in cells[0].get_xticklabels()] == ["a", "b", "c", "d"]
    assert [t.get_text() for t in cells[0].get_yticklabels()] == ["x", "y", "z"]
    assert not cells[4].get_xticklabels() and not cells[4].get_yticklabels()
    np.testing.assert_allclose(cells[5].images[0].get_array(), weights[1, 2])
    assert {ax.images[0].get_clim() for ax in cells} == {(0.0, float(np.float32(weights.max())))}
    assert fig.texts[0].get_text() == "sentence 0"
    path = save_attention_grid_png(tmp_path / "a" / "grid.png", weights)
    assert _png_size(path.read_bytes()) > (0, 0)
    with pytest.raises(ValueError, match=r"rank 4.*Received: weights.shape=\(3, 4\)"):
        plot_attention_grid(_weights())
