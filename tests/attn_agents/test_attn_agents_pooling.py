"""AttentionPooling: the same summary and weights as calling its attention layer."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from attn_agents.attention_pooling import AttentionPooling


def _reference(pooling, tokens, mask):
    """The pooling as `attn_core.MultiHeadAttention(query, LN(tokens))`, keys and all."""
    h = pooling.norm(tokens)
    query = ops.broadcast_to(pooling.query, (tokens.shape[0], 1, pooling.d_model))
    out, scores = pooling.attention(query, h, attention_mask=mask[:, None, :],
                                    return_attention_scores=True)  # [B,1,D], [B,N,1,T]
    return out[:, 0].numpy(), scores.numpy().mean(axis=1)[:, 0]


@pytest.mark.parametrize("jit", [False, True])
def test_pooling_equals_its_attention_layer(jit):
    rng = np.random.default_rng(0)
    pooling = AttentionPooling(16, 4)
    tokens = tf.constant(rng.normal(size=(3, 5, 16)).astype("float32"))
    mask = tf.constant(np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool))
    pooling(tokens, mask)
    # Non-zero biases, so the key bias (which cancels) and the value bias (which does not)
    # are both exercised.
    for w in pooling.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)
    call = tf.function(pooling, jit_compile=True, autograph=False) if jit else pooling
    summary, weights = call(tokens, mask)
    ref_summary, ref_weights = _reference(pooling, tokens, mask)
    np.testing.assert_allclose(summary.numpy(), ref_summary, atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-6)
    np.testing.assert_allclose(weights.numpy()[:2].sum(-1), 1.0, atol=1e-6)
    assert np.all(weights.numpy()[0, 3:] == 0) and np.all(weights.numpy()[2] == 0)


@pytest.mark.parametrize("jit", [False, True])
def test_pooling_without_a_mask_equals_an_all_true_mask(jit):
    rng = np.random.default_rng(1)
    pooling = AttentionPooling(16, 4)
    tokens = tf.constant(rng.normal(size=(3, 4, 16)).astype("float32"))
    pooling(tokens, tf.ones((3, 4), bool))
    for w in pooling.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.3)
    call = tf.function(pooling, jit_compile=True, autograph=False) if jit else pooling
    unmasked, masked = call(tokens, mask=None), call(tokens, tf.ones((3, 4), bool))
    for a, b in zip(unmasked, masked, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
