"""attn_core.MultiHeadAttention against keras.layers.MultiHeadAttention."""

import keras
import numpy as np
import pytest
from layer_cases import jit, lengths_mask, np_, rand

import attn_core

pytestmark = pytest.mark.backend_neutral

CONFIGS = [
    dict(num_heads=2, key_dim=4),
    dict(num_heads=2, key_dim=4, value_dim=3, output_shape=5, use_bias=False),
    dict(num_heads=3, key_dim=2, attention_axes=(1,)),
]


def _pair(config, query, value=None, fused_qkv=False):
    theirs = keras.layers.MultiHeadAttention(**config)
    ours = attn_core.MultiHeadAttention(**config, fused_qkv=fused_qkv)
    # Keras' no-scores path fails on JAX when value_dim != key_dim, so build through the
    # scores path.
    theirs(query, query if value is None else value, return_attention_scores=True)
    ours(query, query if value is None else value)
    ours.set_weights(theirs.get_weights())
    return ours, theirs


@pytest.mark.parametrize("config", CONFIGS)
def test_same_variables_in_the_same_order(config):
    query = rand(2, 5, 8)
    ours, theirs = _pair(config, query)
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [
        w.path.split("/", 1)[1] for w in theirs.weights
    ]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours_config = ours.get_config()
    assert ours_config.pop("fused_qkv") is False
    assert ours_config.pop("chunked_attention") is None
    assert ours_config.pop("chunk_size") == 512
    assert ours_config | {"name": None} == theirs.get_config() | {"name": None}


@pytest.mark.parametrize("fused_qkv", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"use_causal_mask": True},
        {"attention_mask": np.tril(np.ones((2, 5, 5), bool))},
        {"value_mask": lengths_mask([3, 5], 5)},
        {"value_mask": lengths_mask([3, 5], 5), "use_causal_mask": True},
    ],
    ids=["none", "causal", "attention_mask", "value_mask", "value_and_causal"],
)
def test_self_attention_parity(config, kwargs, fused_qkv):
    query = rand(2, 5, 8)
    ours, theirs = _pair(config, query, fused_qkv=fused_qkv)
    a, a_w = ours(query, query, return_attention_scores=True, **kwargs)
    b, b_w = theirs(query, query, return_attention_scores=True, **kwargs)
    np.testing.assert_allclose(np_(a), np_(b), atol=1e-5)
    np.testing.assert_allclose(np_(a_w), np_(b_w), atol=1e-5)
    # Our output without scores is the same too.
    np.testing.assert_allclose(np_(ours(query, **kwargs)), np_(b), atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_cross_attention_with_key_and_implicit_masks(config):
    embed = keras.layers.Embedding(20, 8, mask_zero=True)
    q_tokens = np.array([[1, 2, 3, 0], [4, 5, 6, 7]])
    v_tokens = np.array([[1, 2, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8]])
    key = rand(2, 6, 8, seed=3)
    ours, theirs = _pair(config, rand(2, 4, 8), rand(2, 6, 8))
    # Keras' layer deletes the implicit masks of its inputs, so each call gets fresh ones.
    a, a_w = ours(embed(q_tokens), embed(v_tokens), key=key, return_attention_scores=True)
    b, b_w = theirs(embed(q_tokens), embed(v_tokens), key=key, return_attention_scores=True)
    assert np.all(np_(a_w)[0, :, :, 2:] == 0.0)  # the padded keys of example 0
    np.testing.assert_allclose(np_(a), np_(b), atol=1e-5)
    np.testing.assert_allclose(np_(a_w), np_(b_w), atol=1e-5)
    explicit = ours(np_(embed(q_tokens)), np_(embed(v_tokens)), key=key,
                    query_mask=q_tokens != 0, value_mask=v_tokens != 0)
    np.testing.assert_allclose(np_(explicit), np_(a), atol=1e-6)


def test_all_masked_rows_give_zeros_not_nan():
    query = rand(2, 4, 8)
    layer = attn_core.MultiHeadAttention(2, 4, use_bias=False)
    out, weights = layer(query, query, value_mask=lengths_mask([0, 4], 4),
                         return_attention_scores=True)
    out, weights = np_(out), np_(weights)
    assert np.all(np.isfinite(out)) and np.all(weights[0] == 0.0) and np.all(out[0] == 0.0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    query = rand(2, 5, 8)
    layer = attn_core.MultiHeadAttention(2, 4)
    out, weights = layer(query, value_mask=lengths_mask([0, 5], 5), return_attention_scores=True)
    compute = policy.split("_")[1]
    assert keras.backend.standardize_dtype(out.dtype) == compute
    assert keras.backend.standardize_dtype(weights.dtype) == compute
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    weights = np_(weights).astype("float32")
    assert np.all(np.isfinite(np_(out).astype("float32"))) and np.all(weights[0] == 0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-2)


def test_xla_equals_eager():
    query, value = rand(2, 5, 8), rand(2, 6, 8, seed=1)
    layer = attn_core.MultiHeadAttention(2, 4)
    layer(query, value)  # build outside the compiled function
    mask = lengths_mask([2, 6], 6)
    for fn in (lambda q, v: layer(q, use_causal_mask=True),
               lambda q, v: layer(q, v, value_mask=mask)):
        np.testing.assert_allclose(np_(jit(fn)(query, value)), np_(fn(query, value)), atol=1e-5)


def test_dropout_changes_training_output_only():
    query = rand(2, 5, 8)
    layer = attn_core.MultiHeadAttention(2, 4, dropout=0.5, seed=1)
    np.testing.assert_allclose(np_(layer(query)), np_(layer(query)), atol=0)
    assert not np.allclose(np_(layer(query, training=True)), np_(layer(query)))


def _count_small_set_calls(monkeypatch):
    """Records each trace that takes the broadcast path."""
    calls = []
    small_sets = attn_core.MultiHeadAttention._small_sets
    monkeypatch.setattr(attn_core.MultiHeadAttention, "_small_sets",
                        staticmethod(lambda q, k: small_sets(q, k) and not calls.append(1)))
    return calls


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_short_sequences_under_xla_take_the_broadcast_path(monkeypatch, config):
    """T * S <= 36 under XLA: broadcast products, with Keras' outputs and scores."""
    calls = _count_small_set_calls(monkeypatch)
    query, value = rand(2, 4, 8), rand(2, 6, 8, seed=1)
    ours, theirs = _pair(config, query, value)
    mask = lengths_mask([2, 6], 6)
    a, a_w = jit(lambda q, v: ours(q, v, value_mask=mask, return_attention_scores=True))(
        query, value)
    b, b_w = theirs(query, value, value_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(np_(a), np_(b), atol=1e-5)
    np.testing.assert_allclose(np_(a_w), np_(b_w), atol=1e-5)
    # A query with no key gives zeros, as on the matmul path.
    empty = lengths_mask([0, 6], 6)
    a, a_w = jit(lambda q, v: ours(q, v, value_mask=empty, return_attention_scores=True))(
        query, value)
    assert np.all(np_(a)[0] == 0.0) and np.all(np_(a_w)[0] == 0.0)
    np.testing.assert_allclose(np_(a)[1], np_(ours(query, value, value_mask=empty))[1],
                               atol=1e-5)
    assert calls, "the broadcast path was not taken"


def test_longer_sequences_under_xla_keep_the_matmul_path(monkeypatch):
    calls = _count_small_set_calls(monkeypatch)
    layer = attn_core.MultiHeadAttention(2, 4)
    jit(lambda q: layer(q))(rand(2, 7, 8))  # 7 * 7 > 36
    assert not calls


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="GradientTape")
def test_short_sequence_gradients_under_xla_equal_eager():
    import tensorflow as tf

    query = tf.constant(rand(3, 4, 8))
    layer = attn_core.MultiHeadAttention(2, 4)
    layer(query)
    mask = tf.constant(lengths_mask([0, 2, 4], 4))

    def grads(q):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = tf.reduce_sum(tf.square(layer(q, value_mask=mask)))
        return tape.gradient(loss, [q, *layer.trainable_variables])

    for a, b in zip(tf.function(grads, jit_compile=True)(query), grads(query), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def _projected(layer, query, value):
    """`attend_projected`'s inputs, by the public `projection_weights`."""
    kernels, biases = layer.projection_weights()
    return [x @ np_(k) + (0.0 if b is None else np_(b))
            for x, k, b in zip((query, value, value), kernels, biases, strict=True)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("config", CONFIGS[:2])
def test_public_building_blocks_rebuild_the_call(config, compiled):
    """projection_weights + attend_projected (+ output_weights) give the layer's output and
    scores, on both layouts (4 x 6 tokens under XLA: broadcast products)."""
    query, value = rand(2, 4, 8), rand(2, 6, 8, seed=1)
    mask = np.broadcast_to(lengths_mask([0, 6], 6)[:, None, :], (2, 4, 6))
    layer = attn_core.MultiHeadAttention(**config)
    layer(query, value)
    run = jit if compiled else (lambda fn: fn)
    want, want_w = run(lambda q, v: layer(q, v, attention_mask=mask,
                                          return_attention_scores=True))(query, value)
    q, k, v = _projected(layer, query, value)
    got, got_w = run(lambda q, k, v: layer.attend_projected(
        q, k, v, attention_mask=mask, return_attention_scores=True))(q, k, v)
    np.testing.assert_allclose(np_(got), np_(want), atol=1e-5)
    np.testing.assert_allclose(np_(got_w), np_(want_w), atol=1e-5)
    assert np.all(np_(got)[0] == 0.0)  # no key to attend: zeros
    if keras.backend.backend() == "tensorflow":  # JAX always compiles: XLA everywhere
        assert not layer.uses_broadcast_layout(query, value)  # eager TensorFlow: never
    if compiled:
        assert run(lambda q, v: keras.ops.convert_to_tensor(
            layer.uses_broadcast_layout(q, v)))(query, value)
    # The output projection as a matrix: the layer's output from its context.
    kernel, bias = layer.output_weights()
    heads = config["num_heads"]
    value_dim = config.get("value_dim", config["key_dim"])
    assert tuple(kernel.shape) == (heads * value_dim, config.get("output_shape", 8))
    assert (bias is None) == (not config.get("use_bias", True))
    weights = np_(want_w)  # [B, N, T, S]
    context = np.einsum("bnts,bsnv->btnv", weights,
                        np_(v).reshape(2, 6, heads, value_dim)).reshape(2, 4, -1)
    out = context @ np_(kernel) + (0.0 if bias is None else np_(bias))
    np.testing.assert_allclose(out, np_(want), atol=1e-5)


def test_public_building_blocks_take_the_compute_dtype():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = attn_core.MultiHeadAttention(2, 4)
    query = rand(2, 3, 8)
    layer(query)
    kernels, biases = layer.projection_weights()
    assert {keras.backend.standardize_dtype(t.dtype) for t in (*kernels, *biases)} == {
        "bfloat16"}
    kernels32, _ = layer.projection_weights("float32")
    assert keras.backend.standardize_dtype(kernels32[0].dtype) == "float32"
    out = layer.attend_projected(*_projected(layer, query, query))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np_(out).astype("float32"),
                               np_(layer(query)).astype("float32"), atol=5e-2)
