"""Tests for attn_core.attention_record and the attention summary (`attn_core.summaries`)."""

import base64
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from attn_core import attention_record, summaries
from attn_core.summaries import SummaryWriter


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def _weights(shape, seed=0):
    return _softmax(np.random.default_rng(seed).normal(size=shape))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5, 2, 3, 4)])
def test_record_normalises_every_rank_to_four_axes(shape):
    weights = _weights(shape)
    record = attention_record.make_record(
        "attention/dev_0", weights, ["a", "b", "c"], ["w", "x", "y", "z"])
    assert record["shape"] == [1] * (4 - len(shape)) + list(shape)
    decoded = attention_record.weights_array(record)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, weights.reshape(record["shape"]))
    assert record["layer_names"] == [f"layer {i}" for i in range(record["shape"][0])]
    assert record["view"] == "matrix" and record["key_grid"] is None and record["image"] is None


def test_record_round_trips_through_json_with_labels_as_strings():
    record = attention_record.make_record(
        "mem", _weights((2, 3)), [b"q\xc3\xa9", 7], ["<s>", "</script>", "t-1"],
        layer_names=["only"])
    decoded = attention_record.decode_record(attention_record.encode_record(record))
    assert decoded == record
    assert decoded["query_labels"] == ["qé", "7"]
    assert decoded["layer_names"] == ["only"]


@pytest.mark.parametrize("argument, query_labels, key_labels, message", [
    ("query_labels", ["a", "b"], ["w", "x", "y", "z"], "len(query_labels)=2"),
    ("key_labels", ["a", "b", "c"], ["w", "x", "y"], "len(key_labels)=3"),
    ("key_labels", ["a", "b", "c"], "wxyz", "key_labels='wxyz'"),
])
def test_record_rejects_labels_that_do_not_fit(argument, query_labels, key_labels, message):
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        attention_record.make_record("a/b", _weights((2, 3, 4)), query_labels, key_labels)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, weights_shape, message", [
    ({}, (4,), r"\[T, S\], \[H, T, S\] or \[L, H, T, S\]"),
    ({}, (1, 1, 1, 3, 4), r"weights.shape=\(1, 1, 1, 3, 4\)"),
    ({}, (2, 0, 3, 4), "no empty axis"),
    ({"view": "heat"}, (3, 4), "one of"),
    ({"key_grid": (2, 2)}, (3, 4), "no `key_grid` for view='matrix'"),
    ({"view": "grid"}, (3, 4), r"key_grid` = \(h, w\)"),
    ({"view": "grid", "key_grid": (2, 3)}, (3, 4), "h \\* w <= S = 4"),
    ({"view": "grid", "key_grid": (0, 3)}, (3, 4), "two positive ints"),
    ({"view": "image", "key_grid": (2, 2)}, (3, 4), "h \\* w == S == T"),
    ({"view": "image", "key_grid": (2, 2)}, (4, 4), "Expected an `image`"),
    ({"view": "bars", "image": np.zeros((2, 2, 3))}, (3, 4), "Expected no `image`"),
    ({"layer_names": ["a", "b"]}, (3, 4), "len\\(layer_names\\)=2"),
    ({}, (1, 2, 1024, 2049), "at most 4194304 attention weights"),
])
def test_record_rejects_what_does_not_fit(kwargs, weights_shape, message):
    n_queries, n_keys = weights_shape[-2:] if len(weights_shape) >= 2 else (3, 4)
    with pytest.raises(ValueError, match=message):
        attention_record.make_record(
            "a/b", np.full(weights_shape, 0.25), [str(i) for i in range(n_queries)],
            [str(i) for i in range(n_keys)], **kwargs)


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 4, 2)), r"\[H, W\], \[H, W, 1\] or \[H, W, 3\]"),
    (np.full((4, 4, 3), -0.5), r"in \[0, 1\]"),
    (np.zeros((4, 4, 3), dtype=np.int32), "uint8 or float"),
])
def test_record_rejects_images_it_cannot_draw(image, message):
    with pytest.raises(ValueError, match=message):
        attention_record.make_record("gan/attention", _weights((4, 4)), list("abcd"),
                                     list("abcd"), view="image", image=image, key_grid=(2, 2))


def test_image_record_holds_the_image_as_png():
    rgb = np.random.default_rng(1).uniform(size=(6, 6, 3))
    record = attention_record.make_record(
        "gan/attention", _weights((2, 9, 9)), [str(i) for i in range(9)],
        [str(i) for i in range(9)], view="image", image=rgb, key_grid=(3, 3))
    png = Image.open(io.BytesIO(base64.b64decode(record["image"])))
    np.testing.assert_array_equal(np.asarray(png), np.round(rgb * 255).astype(np.uint8))
    assert record["key_grid"] == [3, 3]
    gray = attention_record.make_record(
        "gan/attention", _weights((4, 4)), list("abcd"), list("abcd"), view="image",
        image=np.full((8, 8, 1), 200, np.uint8), key_grid=(2, 2))
    gray_png = Image.open(io.BytesIO(base64.b64decode(gray["image"])))
    assert gray_png.size == (8, 8) and np.asarray(gray_png).max() == 200


def _records(logdir, tag):
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    metadata = accumulator.SummaryMetadata(tag)
    assert metadata.plugin_data.plugin_name == "attention"
    return [(event.step, attention_record.decode_record(
        tf.make_ndarray(event.tensor_proto).item())) for event in accumulator.Tensors(tag)]


def test_summary_round_trip_through_the_event_file(tmp_path):
    weights = _weights((2, 3, 5, 4))
    queries, keys = ["I", "am", "here", ".", "</s>"], ["je", "suis", "là", "."]
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert summaries.attention("attention/dev_0", weights, queries, keys, step=3,
                                   layer_names=["dec 0", "dec 1"])
        tf.summary.experimental.set_step(7)
        try:
            assert summaries.attention("attention/dev_0", weights[1, 0], queries, keys)
        finally:
            tf.summary.experimental.set_step(None)
    writer.close()
    assert not summaries.attention("attention/dev_0", weights, queries, keys, step=1)

    [(step_3, first), (step_7, second)] = _records(tmp_path, "attention/dev_0")
    assert (step_3, step_7) == (3, 7)
    np.testing.assert_array_equal(attention_record.weights_array(first), weights)
    assert first["query_labels"] == queries and first["key_labels"] == keys
    assert first["layer_names"] == ["dec 0", "dec 1"] and first["name"] == "attention/dev_0"
    np.testing.assert_array_equal(attention_record.weights_array(second)[0, 0], weights[1, 0])

    # The same event file read with the plain TF 1 iterator: the same bytes.
    [event_file] = tmp_path.glob("events.out.tfevents.*")
    values = [value for event in tf.compat.v1.train.summary_iterator(str(event_file))
              for value in event.summary.value if value.tag == "attention/dev_0"]
    assert values[0].metadata.plugin_data.plugin_name == "attention"
    assert attention_record.decode_record(
        tf.make_ndarray(values[0].tensor).item()) == first


def test_writer_attention_checks_before_writing_and_is_a_no_op_when_disabled(tmp_path):
    weights = _weights((4, 4))
    with SummaryWriter(tmp_path / "on") as writer:
        writer.attention("agent/grid", 2, weights, list("abcd"), list("abcd"), view="grid",
                         key_grid=(2, 2))
        with pytest.raises(ValueError, match="namespaced tag"):
            writer.attention("grid", 2, weights, list("abcd"), list("abcd"))
    [(step, record)] = _records(tmp_path / "on", "agent/grid")
    assert step == 2 and record["view"] == "grid" and record["key_grid"] == [2, 2]
    np.testing.assert_array_equal(attention_record.weights_array(record)[0, 0], weights)

    disabled = SummaryWriter(tmp_path / "off", enabled=False)
    with pytest.raises(ValueError, match="len\\(key_labels\\)=3"):
        disabled.attention("agent/grid", 2, weights, list("abcd"), list("abc"))
    disabled.attention("agent/grid", 2, weights, list("abcd"), list("abcd"))
    assert not (tmp_path / "off").exists()


def test_write_html_is_self_contained_and_escapes_labels(tmp_path):
    record = attention_record.make_record(
        "attention/dev_0", _weights((2, 3)), ["</script><b>", "x"], ["a", "b", "c"])
    path = attention_record.write_html(tmp_path / "out" / "view.html", [record], "A & <B>")
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "view.html"
    assert "<title>A &amp; &lt;B&gt;</title>" in page
    assert page.count("</script>") == 2  # the data's and the module's, not the label's
    assert "\\u003c/script>\\u003cb>" in page
    assert "export function renderStatic" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert list((tmp_path / "out").iterdir()) == [path]
    with pytest.raises(ValueError, match="at least one"):
        attention_record.write_html(tmp_path / "empty.html", [], "t")
    with pytest.raises(ValueError, match=r"records\[0\]"):
        attention_record.write_html(tmp_path / "bad.html", [{"name": "x"}], "t")
