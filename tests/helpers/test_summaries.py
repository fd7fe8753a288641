"""Tests for attn_core.summaries."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from attn_core.summaries import SummaryWriter, hparams_markdown


def _accumulator(logdir):
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


def test_hparams_markdown_golden():
    table = hparams_markdown({"env_id": "CartPole-v1", "learning_rate": 0.00025, "note": "a|b"})
    assert table == (
        "|param|value|\n|-|-|\n|env_id|CartPole-v1|\n|learning_rate|0.00025|\n|note|a\\|b|"
    )


def test_writer_scalars_image_and_text_read_back(tmp_path):
    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3]], dtype=np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.hparams_table({"seed": 1, "lr": 0.001})
        writer.scalars(1, {"losses/total": 0.5, "charts/learning_rate": np.float32(0.001)})
        writer.scalars(2, {"losses/total": tf.constant(0.25), "eval/bleu": 12})
        png_path = writer.attention_image(
            "attention/sample_0", 2, weights, x_labels=["a", "b", "c"], y_labels=["x", "y"]
        )
        grid_path = writer.attention_grid_image("attention/heads", 2, np.stack([[weights] * 3]))

    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert png_path == tmp_path / "attention" / "attention_sample_0_2.png"
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert grid_path == tmp_path / "attention" / "attention_heads_2.png"
    assert grid_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    accumulator = _accumulator(tmp_path)
    tags = accumulator.Tags()["tensors"]
    assert {"losses/total", "charts/learning_rate", "eval/bleu"} <= set(tags)
    assert {"attention/sample_0", "attention/heads", "hyperparameters"} <= set(tags)

    def values(tag):
        return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]

    assert values("losses/total") == [(1, 0.5), (2, 0.25)]
    assert values("charts/learning_rate") == [(1, pytest.approx(0.001))]
    assert values("eval/bleu") == [(2, 12.0)]

    [image_event] = accumulator.Tensors("attention/sample_0")
    assert image_event.step == 2
    assert accumulator.SummaryMetadata("attention/sample_0").plugin_data.plugin_name == "images"
    width, height, png = tf.make_ndarray(image_event.tensor_proto)
    assert int(width) > 0 and int(height) > 0 and png[:4] == b"\x89PNG"

    [text_event] = accumulator.Tensors("hyperparameters")
    assert text_event.step == 0
    text = tf.make_ndarray(text_event.tensor_proto).item().decode()
    assert text == "|param|value|\n|-|-|\n|seed|1|\n|lr|0.001|"


def test_scalars_of_one_tag_set_share_one_trace_and_keep_each_step(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.scalars(step, {"losses/a": step * 0.5, "losses/b": -step})
        writer.scalars(3, {"losses/a": 7.0})
        [(tags, write)] = [(t, f) for t, f in writer._scalar_functions.items()
                           if t == ("losses/a", "losses/b")]
        assert write.experimental_get_tracing_count() == 1
    accumulator = _accumulator(tmp_path)

    def values(tag):
        return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]

    assert values("losses/a") == [(0, 0.0), (1, 0.5), (2, 1.0), (3, 7.0)]
    assert values("losses/b") == [(0, 0.0), (1, -1.0), (2, -2.0)]


def test_disabled_writer_checks_tags_and_writes_nothing(tmp_path):
    writer = SummaryWriter(tmp_path / "off", enabled=False)
    writer.scalars(1, {"losses/a": 1.0})
    with pytest.raises(ValueError, match="namespaced tag"):
        writer.scalars(1, {"loss": 1.0})
    assert not (tmp_path / "off").exists()


@pytest.mark.parametrize("tag", ["loss", "/loss", "losses/", "losses/a b"])
def test_tags_without_namespace_are_rejected(tmp_path, tag):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="Expected a namespaced tag"):
            writer.scalars(0, {"losses/ok": 1.0, tag: 1.0})
        with pytest.raises(ValueError, match="Received: tag="):
            writer.attention_image(tag, 0, np.eye(2))
    assert "losses/ok" not in _accumulator(tmp_path).Tags()["tensors"]  # Nothing written.
