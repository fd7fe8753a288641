"""SelfAttention2D: the SAGAN block."""

import keras
import numpy as np
import pytest
from layer_cases import jit, np_, rand

import attn_core

pytestmark = pytest.mark.backend_neutral


def _reference(layer, x):
    """NumPy SAGAN block with the layer's own kernels."""
    wq, wk, wv, wo = (np_(c.kernel)[0, 0] for c in (
        layer.query_conv, layer.key_conv, layer.value_conv, layer.output_conv))
    b, h, w, _ = x.shape
    q, k, v = x @ wq, x @ wk, x @ wv

    def pool(t):
        return t.reshape(b, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))

    k, v = pool(k).reshape(b, -1, k.shape[-1]), pool(v).reshape(b, -1, v.shape[-1])
    s = q.reshape(b, h * w, -1) @ k.transpose(0, 2, 1)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = (a @ v).reshape(b, h, w, -1) @ wo
    return x + np_(layer.gamma) * o, a


def test_identity_at_initialisation_and_shapes():
    x = rand(2, 8, 6, 16)
    layer = attn_core.SelfAttention2D()
    y, attention = layer(x, return_attention_scores=True)
    np.testing.assert_array_equal(np_(y), x)
    assert tuple(attention.shape) == (2, 48, 12)
    assert [tuple(w.shape) for w in layer.weights] == [
        (), (1, 1, 16, 2), (1, 1, 16, 2), (1, 1, 16, 8), (1, 1, 8, 16)]
    np.testing.assert_allclose(np_(attention).sum(-1), 1.0, atol=1e-5)


def test_matches_numpy_reference():
    x = rand(2, 4, 4, 16)
    layer = attn_core.SelfAttention2D()
    layer(x)
    layer.gamma.assign(0.7)
    y, attention = layer(x, return_attention_scores=True)
    expected_y, expected_a = _reference(layer, x)
    np.testing.assert_allclose(np_(attention), expected_a, atol=1e-5)
    np.testing.assert_allclose(np_(y), expected_y, atol=1e-5)


def test_without_pooling():
    layer = attn_core.SelfAttention2D(pool=False)
    _, attention = layer(rand(1, 3, 5, 8), return_attention_scores=True)
    assert tuple(attention.shape) == (1, 15, 15)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_and_xla(policy):
    keras.config.set_dtype_policy(policy)
    layer = attn_core.SelfAttention2D()
    x = rand(2, 4, 4, 16)
    layer(x)
    layer.gamma.assign(1.0)
    y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    # XLA fuses and rounds in another order, so results may differ by a few units in the
    # last place of the compute dtype. A unit is relative to the operands, not to the
    # result: y = x + gamma * o cancels, so an output near 0.13 can carry the rounding of
    # operands near 2 (one bfloat16 unit there is 0.0156). Scale the tolerance by the
    # largest magnitude in play.
    ulp = 2.0 ** -7 if policy == "mixed_bfloat16" else 2.0 ** -10
    expected = np_(y).astype("float32")
    scale = max(np.abs(expected).max(), np.abs(x).max())
    np.testing.assert_allclose(np_(jit(layer)(x)).astype("float32"), expected,
                               atol=2 * ulp * scale, rtol=0)


def test_config_round_trip():
    layer = attn_core.SelfAttention2D(pool=False, qk_ratio=4)
    clone = attn_core.SelfAttention2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "factory, shape, message",
    [
        (lambda: attn_core.SelfAttention2D(qk_ratio=0), None, "qk_ratio=0"),
        (lambda: attn_core.SelfAttention2D(), (1, 5, 4, 16), "even height and width"),
        (lambda: attn_core.SelfAttention2D(), (1, 4, 4, 4), "at least 8 channels"),
        (lambda: attn_core.SelfAttention2D(), (1, 16, 16), "rank 4"),
    ],
)
def test_invalid(factory, shape, message):
    with pytest.raises(ValueError, match=message):
        factory()(rand(*shape)) if shape else factory()
