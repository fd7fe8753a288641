"""Tests for attn_core.heatmap."""

import struct

import numpy as np
import pytest
from matplotlib.figure import Figure

from attn_core.heatmap import figure_to_png_bytes, plot_attention, save_attention_png

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
