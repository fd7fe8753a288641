"""AttentionRNNCell and AttentionRNN: the successor to tfa's AttentionWrapper."""

import keras
import numpy as np
import pytest
from layer_cases import jit, lengths_mask, np_, rand

import attn_core
from attn_core.reverse_task import ReverseConfig, train

pytestmark = pytest.mark.backend_neutral

ATTENTIONS = {
    "luong": lambda: attn_core.LuongAttention("general"),
    "bahdanau": lambda: attn_core.BahdanauAttention(6),
    "local_m": lambda: attn_core.LocalAttention(1, mode="monotonic", score="dot"),
}
CELLS = {
    "gru": lambda: keras.layers.GRUCell(8),
    "lstm": lambda: keras.layers.LSTMCell(8),
    "stacked_lstm": lambda: keras.layers.StackedRNNCells(
        [keras.layers.LSTMCell(8), keras.layers.LSTMCell(8)]
    ),
}


def _cell(attention="luong", cell="gru", **kwargs):
    return attn_core.AttentionRNNCell(CELLS[cell](), ATTENTIONS[attention](), **kwargs)


@pytest.mark.parametrize("cell_name", sorted(CELLS))
@pytest.mark.parametrize("attention", sorted(ATTENTIONS))
def test_sequence_equals_step_by_step_decoding(attention, cell_name):
    inputs, memory = rand(2, 4, 3), rand(2, 5, 8, seed=1)
    mask = lengths_mask([3, 5], 5)
    cell = _cell(attention, cell_name, attention_layer_size=6, alignment_history=True)
    outputs, alignments = attn_core.AttentionRNN(cell)(inputs, constants=[memory, mask])
    assert tuple(outputs.shape) == (2, 4, 6) and tuple(alignments.shape) == (2, 4, 5)
    alignments = np_(alignments)
    np.testing.assert_allclose(alignments.sum(-1), 1.0, atol=1e-5)
    assert np.all(alignments[0, :, 3:] == 0.0)

    cell.setup_memory(memory, mask)
    states = cell.get_initial_state(batch_size=2)
    for t in range(4):
        output, states, step_alignments = cell(inputs[:, t], states, return_alignments=True)
        np.testing.assert_allclose(np_(output), np_(outputs)[:, t], atol=1e-5)
        np.testing.assert_allclose(np_(step_alignments), alignments[:, t], atol=1e-5)


def test_inside_plain_keras_rnn_after_setup_memory():
    inputs, memory = rand(2, 4, 3), rand(2, 5, 8, seed=1)
    mask = lengths_mask([2, 5], 5)
    cell = _cell("bahdanau", "lstm", attention_layer_size=6)
    expected = attn_core.AttentionRNN(cell)(inputs, constants=[memory, mask])
    cell.setup_memory(memory, mask)
    outputs = keras.layers.RNN(cell, return_sequences=True)(inputs)
    np.testing.assert_allclose(np_(outputs), np_(expected), atol=1e-5)


def test_state_and_output_sizes():
    cell = _cell("luong", "lstm", attention_layer_size=6, output_attention=False)
    memory = rand(2, 5, 8)
    cell.setup_memory(memory)
    assert cell.state_size == [8, 8, 6]
    assert cell.output_size == 8
    assert _cell("local_m", attention_layer_size=6).state_size == [8, 6, 1]
    no_layer = _cell("luong")
    no_layer.setup_memory(memory)
    assert no_layer.state_size == [8, 8]  # the attentional vector is the context, size Dm
    outputs, h, a = attn_core.AttentionRNN(cell, return_state=True, return_sequences=False)(
        rand(2, 3, 4), constants=memory
    )[:3]
    assert tuple(outputs.shape) == (2, 8) and tuple(a.shape) == (2, 8)


def test_implicit_masks_and_functional_model():
    src = keras.Input((None,), dtype="int32")
    tgt = keras.Input((None, 3))
    embedding = keras.layers.Embedding(10, 8, mask_zero=True)
    memory = embedding(src)
    cell = _cell("bahdanau", attention_layer_size=6, alignment_history=True)
    outputs, alignments = attn_core.AttentionRNN(cell)(tgt, constants=memory)
    model = keras.Model([src, tgt], [outputs, alignments])
    tokens = np.array([[1, 2, 0, 0], [3, 4, 5, 6]])
    x = rand(2, 3, 3)
    _, implicit = model([tokens, x])
    emb = np_(embedding(tokens))
    _, explicit = attn_core.AttentionRNN(cell)(x, constants=[emb, tokens != 0])
    np.testing.assert_allclose(np_(implicit), np_(explicit), atol=1e-6)
    assert np.all(np_(implicit)[0, :, 2:] == 0.0)


def test_xla_and_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    inputs, memory = rand(2, 4, 3), rand(2, 5, 8, seed=1)
    layer = attn_core.AttentionRNN(_cell("luong", attention_layer_size=6))
    eager = layer(inputs, constants=memory)
    assert keras.backend.standardize_dtype(eager.dtype) == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    compiled = jit(lambda x, m: layer(x, constants=m))(inputs, memory)
    np.testing.assert_allclose(np_(compiled).astype("float32"), np_(eager).astype("float32"),
                               atol=2e-2)


def test_errors():
    with pytest.raises(ValueError, match="Expected `attention` to be an attn_core attention"):
        attn_core.AttentionRNNCell(keras.layers.GRUCell(4), keras.layers.Attention())
    with pytest.raises(ValueError, match="attention_layer_size=0"):
        _cell(attention_layer_size=0)
    cell = _cell()
    with pytest.raises(ValueError, match="Expected the memory"):
        cell(rand(2, 3), [np.zeros((2, 8), "float32")] * 2)
    with pytest.raises(ValueError, match="Expected an AttentionRNNCell"):
        attn_core.AttentionRNN(keras.layers.GRUCell(4))


def test_learns_to_reverse_digit_sequences():
    # The cell trains the same way whatever its score layer, and each run takes tens of
    # seconds: Bahdanau learns on TensorFlow, Luong on JAX.
    attention = "luong" if keras.backend.backend() == "jax" else "bahdanau"
    config = ReverseConfig(attention=attention, train_size=4000, epochs=5)
    result = train(config)
    assert result.accuracy >= 0.95, result.accuracy
    assert result.losses[-1] < result.losses[0]


def test_dropout_of_the_wrapped_cell_in_a_compiled_training_step():
    inputs, memory = rand(2, 4, 3), rand(2, 5, 8, seed=1)
    cell = attn_core.AttentionRNNCell(
        keras.layers.GRUCell(8, dropout=0.5, recurrent_dropout=0.5),
        attn_core.LuongAttention("general"), attention_layer_size=6,
    )
    layer = attn_core.AttentionRNN(cell)
    inference = np_(layer(inputs, constants=memory))
    # A second compiled TF function must not see the first one's masks. (JAX jit needs
    # stateless_call for dropout's seed state, so JAX runs these steps eagerly.)
    compile_ = jit if keras.backend.backend() == "tensorflow" else (lambda fn: fn)
    for _ in range(2):
        step = compile_(lambda x, m: layer(x, constants=m, training=True))
        out = np_(step(inputs, memory))
        assert np.all(np.isfinite(out)) and not np.allclose(out, inference)
    np.testing.assert_allclose(np_(layer(inputs, constants=memory)), inference, atol=1e-6)
