"""attn_core.MultiHeadAttention's key/value cache: incremental self-attention against the
full causal call, cross-attention from a precomputed cache against the plain call, under XLA
and the mixed policies, and in a saved `.keras` model."""

import keras
import numpy as np
import pytest
from keras import ops
from layer_cases import jit, lengths_mask, np_, rand

import attn_core

pytestmark = pytest.mark.backend_neutral

CONFIGS = [
    dict(num_heads=2, key_dim=4),
    dict(num_heads=3, key_dim=2, output_shape=5, use_bias=False),
]


def _layer(config, dim=8, fused_qkv=False, seed=0):
    layer = attn_core.MultiHeadAttention(**config, fused_qkv=fused_qkv,
                                         kernel_initializer=keras.initializers.GlorotUniform(seed),
                                         bias_initializer=keras.initializers.RandomNormal(seed=seed))
    layer.build((None, None, dim), (None, None, dim))
    return layer


def _step_by_step(layer, x, value_mask=None, max_length=None):
    """Outputs [B, T, O] and weights [B, N, T, S_max] of one call per position."""
    batch, length = x.shape[0], x.shape[1]
    cache = layer.initial_cache(batch, max_length or length)
    outputs, weights = [], []
    for t in range(length):
        y, w, cache = layer(x[:, t:t + 1], cache=cache, cache_update_index=t,
                            value_mask=value_mask, return_attention_scores=True)
        outputs.append(np_(y))
        weights.append(np_(w))
    return np.concatenate(outputs, 1), np.concatenate(weights, 2), cache


@pytest.mark.parametrize("fused_qkv", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
def test_incremental_self_attention_equals_the_causal_call_at_every_position(config, fused_qkv):
    x = rand(3, 6, 8)
    layer = _layer(config, fused_qkv=fused_qkv)
    full, full_weights = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    # A cache longer than the sequence: the positions not yet written must not count.
    out, weights, cache = _step_by_step(layer, x, max_length=9)
    np.testing.assert_allclose(out, np_(full), atol=1e-5)
    np.testing.assert_allclose(weights[..., :6], np_(full_weights), atol=1e-6)
    assert np.all(weights[..., 6:] == 0.0)
    assert tuple(cache.shape) == (3, 2, 9, config["num_heads"], config["key_dim"])
    # The cache holds the keys and values of the whole sequence, then zeros.
    np.testing.assert_allclose(np_(cache)[:, :, :6], np_(layer.compute_cache(x)), atol=1e-6)
    assert np.all(np_(cache)[:, :, 6:] == 0.0)


def test_a_prefix_at_once_then_steps_with_padding():
    """Several positions in one call (use_causal_mask offsets the causal mask by the index),
    with the cache's padded positions masked as the plain call masks them."""
    x = rand(2, 7, 8, seed=1)
    keep = lengths_mask([7, 5], 7)
    layer = _layer(CONFIGS[0])
    full = np_(layer(x, x, value_mask=keep, use_causal_mask=True))
    cache = layer.initial_cache(2, 7)
    first, cache = layer(x[:, :4], cache=cache, cache_update_index=0, value_mask=keep,
                         use_causal_mask=True)
    rest = []
    for t in range(4, 7):
        y, cache = layer(x[:, t:t + 1], cache=cache, cache_update_index=t, value_mask=keep)
        rest.append(np_(y))
    np.testing.assert_allclose(np.concatenate([np_(first), *rest], 1), full, atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS)
def test_cross_attention_from_a_precomputed_cache_equals_the_plain_call(config):
    query, memory, key = rand(3, 4, 8), rand(3, 5, 6, seed=1), rand(3, 5, 7, seed=2)
    keep = lengths_mask([2, 5, 4], 5)
    layer = attn_core.MultiHeadAttention(**config)
    plain, plain_weights = layer(query, memory, key=key, value_mask=keep,
                                 return_attention_scores=True)
    cache = layer.compute_cache(memory, key=key)
    assert tuple(cache.shape) == (3, 2, 5, config["num_heads"], config["key_dim"])
    out, weights, same = layer(query, cache=cache, value_mask=keep, return_attention_scores=True)
    np.testing.assert_allclose(np_(out), np_(plain), atol=1e-5)
    np.testing.assert_allclose(np_(weights), np_(plain_weights), atol=1e-6)
    np.testing.assert_array_equal(np_(same), np_(cache))
    # One query at a time (a decoder's steps) gives the same rows.
    for t in range(4):
        row, _ = layer(query[:, t:t + 1], cache=cache, value_mask=keep)
        np.testing.assert_allclose(np_(row)[:, 0], np_(plain)[:, t], atol=1e-5)


def test_a_compiled_decoding_loop_with_a_traced_index():
    """The steps inside one XLA computation (`fori_loop`, so the index is a traced scalar)."""
    x = rand(2, 5, 8, seed=3)
    layer = _layer(CONFIGS[0])
    full = np_(layer(x, x, use_causal_mask=True))

    def decode(x):
        def body(t, carry):
            cache, out = carry
            step = ops.slice(x, (0, t, 0), (2, 1, 8))
            y, cache = layer(step, cache=cache, cache_update_index=t)
            return cache, ops.slice_update(out, (0, t, 0), y)

        return ops.fori_loop(0, 5, body, (layer.initial_cache(2, 5), ops.zeros((2, 5, 8))))[1]

    np.testing.assert_allclose(np_(jit(decode)(x)), full, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function is TF's")
def test_inside_a_tf_function_while_loop():
    import tensorflow as tf

    x = rand(2, 5, 8, seed=4)
    layer = _layer(CONFIGS[1])
    full = np_(layer(x, x, use_causal_mask=True))

    @tf.function
    def decode(x):
        def body(t, cache, out):
            y, cache = layer(x[:, t:t + 1], cache=cache, cache_update_index=t)
            return t + 1, cache, out.write(t, y[:, 0])

        out = tf.TensorArray(tf.float32, size=5)
        _, _, out = tf.while_loop(lambda t, *_: t < 5, body,
                                  [tf.constant(0), layer.initial_cache(2, 5), out])
        return tf.transpose(out.stack(), (1, 0, 2))

    np.testing.assert_allclose(np_(decode(x)), full, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_policy_keeps_the_cache_in_the_compute_dtype(policy):
    keras.config.set_dtype_policy(policy)
    x, memory = rand(2, 5, 8, seed=5), rand(2, 3, 8, seed=6)
    layer = _layer(CONFIGS[0])
    dtype = layer.compute_dtype
    assert dtype == policy.split("_")[1]
    full, full_weights = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    cache = layer.initial_cache(2, 5)
    assert keras.backend.standardize_dtype(cache.dtype) == dtype
    out, weights, cache = _step_by_step(layer, x)
    assert keras.backend.standardize_dtype(cache.dtype) == dtype
    tolerance = 2e-2 if policy == "mixed_bfloat16" else 2e-3
    np.testing.assert_allclose(out.astype("float32"), np_(full).astype("float32"),
                               atol=tolerance)
    np.testing.assert_allclose(weights.astype("float32"), np_(full_weights).astype("float32"),
                               atol=tolerance)
    # A float32 cache is cast to the compute dtype.
    cross = _layer(CONFIGS[0])
    plain = np_(cross(x, memory)).astype("float32")
    memory_cache = ops.cast(cross.compute_cache(memory), "float32")
    out, same = cross(x, cache=memory_cache)
    assert keras.backend.standardize_dtype(same.dtype) == dtype
    np.testing.assert_allclose(np_(out).astype("float32"), plain, atol=tolerance)


def test_cached_calls_round_trip_in_a_keras_file(tmp_path):
    """A functional model of a decoding step (self-attention at index 2, cross-attention from
    a cache) saves and loads, and its layers' cache helpers give the same caches."""
    step, self_cache = keras.Input((1, 8)), keras.Input((2, 4, 2, 4))
    memory_cache = keras.Input((2, 3, 2, 4))
    self_attention = attn_core.MultiHeadAttention(2, 4, name="self_attention")
    cross_attention = attn_core.MultiHeadAttention(2, 4, name="cross_attention")
    h, new_cache = self_attention(step, cache=self_cache, cache_update_index=2)
    out, weights, _ = cross_attention(h, cache=memory_cache, return_attention_scores=True)
    model = keras.Model([step, self_cache, memory_cache], [out, weights, new_cache])
    x, memory = rand(2, 1, 8), rand(2, 3, 8, seed=1)
    cross_attention(x, memory)  # builds its value projection for compute_cache
    inputs = [x, rand(2, 2, 4, 2, 4, seed=2), np_(cross_attention.compute_cache(memory))]
    expected = [np_(y) for y in model(inputs)]
    model.save(tmp_path / "step.keras")
    loaded = keras.saving.load_model(tmp_path / "step.keras")
    for got, want in zip(loaded(inputs), expected, strict=True):
        np.testing.assert_allclose(np_(got), want, atol=1e-6)
    np.testing.assert_allclose(np_(expected[2])[:, :, 2],
                               np_(self_attention.compute_cache(x))[:, :, 0], atol=1e-6)
    np.testing.assert_allclose(np_(loaded.get_layer("cross_attention").compute_cache(memory)),
                               inputs[2], atol=1e-6)
    assert loaded.get_layer("self_attention").get_config() == self_attention.get_config()


def test_cache_errors():
    layer = attn_core.MultiHeadAttention(2, 4)
    with pytest.raises(ValueError, match="built layer"):
        layer.compute_cache(rand(1, 3, 8))
    with pytest.raises(ValueError, match="value_dim == key_dim"):
        attn_core.MultiHeadAttention(2, 4, value_dim=3).initial_cache(1, 3)
    with pytest.raises(ValueError, match="no gate"):
        attn_core.MultiHeadAttention(2, 4, attention_axes=(1, 2)).initial_cache(1, 3)
    layer(rand(1, 3, 8), rand(1, 3, 8))
    with pytest.raises(ValueError, match="Expected a cache"):
        layer(rand(1, 1, 8), cache_update_index=0)
