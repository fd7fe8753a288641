"""Contract of the score layers: Bahdanau, Luong (4 scores), local-m, local-p."""

import keras
import numpy as np
import pytest
from layer_cases import SCORE_LAYERS, WEIGHT_COUNTS, jit, lengths_mask, np_, rand

import attn_core

pytestmark = pytest.mark.backend_neutral
NAMES = sorted(SCORE_LAYERS)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_weight_counts(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    context, weights = layer(query, value, return_attention_scores=True)
    assert tuple(context.shape) == (2, 3, 6)
    assert tuple(weights.shape) == (2, 3, 5)
    assert len(layer.weights) == WEIGHT_COUNTS[name]
    np.testing.assert_allclose(np_(weights).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_single_step_query_equals_that_row_of_the_sequence(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    mask = lengths_mask([3, 5], 5)
    context, weights = layer(query, value, value_mask=mask, return_attention_scores=True)
    step_kwargs = {"query_positions": np.array([1, 1])} if name == "local_m" else {}
    c1, w1 = layer(query[:, 1], value, value_mask=mask, return_attention_scores=True,
                   **step_kwargs)
    assert tuple(c1.shape) == (2, 6) and tuple(w1.shape) == (2, 5)
    np.testing.assert_allclose(np_(c1), np_(context)[:, 1], atol=1e-5)
    np.testing.assert_allclose(np_(w1), np_(weights)[:, 1], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_separate_key(name):
    layer = SCORE_LAYERS[name]()
    query, value, key = rand(2, 3, 6), rand(2, 5, 4, seed=1), rand(2, 5, 6, seed=2)
    context, weights = layer(query, value, key=key, return_attention_scores=True)
    assert tuple(context.shape) == (2, 3, 4)
    expected = np.einsum("bts,bsd->btd", np_(weights), value)
    np.testing.assert_allclose(np_(context), expected, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_masked_keys_get_zero_weight_and_rows_sum_to_one(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(3, 4, 6), rand(3, 6, 6, seed=1)
    mask = lengths_mask([2, 6, 4], 6)
    _, weights = layer(query, value, value_mask=mask, return_attention_scores=True)
    weights = np_(weights)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_all_masked_rows_give_zeros_not_nan(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    value_mask = lengths_mask([0, 5], 5)
    query_mask = np.array([[True, True, True], [True, False, True]])
    context, weights = layer(query, value, query_mask=query_mask, value_mask=value_mask,
                             return_attention_scores=True)
    context, weights = np_(context), np_(weights)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(context[0] == 0.0) and np.all(weights[0] == 0.0)
    assert np.all(context[1, 1] == 0.0) and np.all(weights[1, 1] == 0.0)
    np.testing.assert_allclose(weights[1, [0, 2]].sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_implicit_masks_equal_explicit_masks(name):
    tokens_q = np.array([[3, 4, 0], [5, 6, 7]])
    tokens_v = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    embed = keras.layers.Embedding(10, 6, mask_zero=True)
    layer = SCORE_LAYERS[name]()
    implicit = layer(embed(tokens_q), embed(tokens_v), return_attention_scores=True)
    explicit = layer(
        embed(tokens_q), embed(tokens_v), query_mask=tokens_q != 0, value_mask=tokens_v != 0,
        return_attention_scores=True,
    )
    for a, b in zip(implicit, explicit, strict=True):
        np.testing.assert_allclose(np_(a), np_(b), atol=1e-6)
    assert np.all(np_(implicit[0])[0, 2] == 0.0)  # the padded query row


@pytest.mark.parametrize("name", NAMES)
def test_xla_equals_eager(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    mask = lengths_mask([3, 5], 5)
    eager = layer(query, value, value_mask=mask, return_attention_scores=True)
    compiled = jit(lambda q, v, m: layer(q, v, value_mask=m, return_attention_scores=True))(
        query, value, mask
    )
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(np_(a), np_(b), atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision(name, policy):
    keras.config.set_dtype_policy(policy)
    compute = policy.split("_")[1]
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    mask = lengths_mask([0, 5], 5)  # one all-masked row, under half precision too
    context, weights = layer(query, value, value_mask=mask, return_attention_scores=True)
    assert keras.backend.standardize_dtype(context.dtype) == compute
    assert keras.backend.standardize_dtype(weights.dtype) == compute
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    context, weights = np_(context).astype("float32"), np_(weights).astype("float32")
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(weights[0] == 0.0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-2)


@pytest.mark.parametrize("name", NAMES)
def test_get_config_round_trip(name):
    layer = SCORE_LAYERS[name]()
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    expected = layer(query, value)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(query, value)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np_(clone(query, value)), np_(expected), atol=1e-6)


def test_luong_dot_equals_keras_attention():
    query, value = rand(2, 3, 6), rand(2, 5, 6, seed=1)
    mask = lengths_mask([2, 5], 5)
    ours, ours_w = attn_core.LuongAttention("dot")(
        query, value, value_mask=mask, return_attention_scores=True
    )
    theirs, theirs_w = keras.layers.Attention()(
        [query, value], mask=[None, mask], return_attention_scores=True
    )
    np.testing.assert_allclose(np_(ours), np_(theirs), atol=1e-5)
    np.testing.assert_allclose(np_(ours_w), np_(theirs_w), atol=1e-5)


def test_local_monotonic_window_and_clipping():
    layer = attn_core.LocalAttention(1, mode="monotonic", score="dot")
    query, value = rand(1, 6, 4), rand(1, 4, 4, seed=1)
    _, weights = layer(query, value, value_mask=lengths_mask([3], 4),
                       return_attention_scores=True)
    nonzero = np_(weights)[0] > 0
    # t=0 sees source 0..1; t=1 sees 0..2; t>=2 is clipped to the last valid source (2).
    expected = np.array([[1, 1, 0, 0], [1, 1, 1, 0]] + [[0, 1, 1, 0]] * 4, bool)
    np.testing.assert_array_equal(nonzero, expected)


def test_local_predictive_gradient_reaches_the_position_predictor():
    layer = attn_core.LocalAttention(2, mode="predictive", score="dot")
    query, value = rand(2, 3, 6), rand(2, 7, 6, seed=1)
    layer(query, value)
    grads = _gradients(layer, query, value)
    assert set(grads) == {"position_dense/kernel", "position_v/kernel"}
    assert all(np.abs(g).sum() > 0 for g in grads.values())


def _gradients(layer, query, value):
    """name -> gradient of sum(context * noise) w.r.t. each trainable weight."""
    noise = rand(*np_(layer(query, value)).shape, seed=9)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(query, value) * noise)
        grads = tape.gradient(loss, layer.trainable_weights)
    else:
        import jax

        values = [w.value for w in layer.trainable_weights]

        def loss_fn(vals):
            out, _ = layer.stateless_call(vals, [], query, value)
            return (out * noise).sum()

        grads = jax.grad(loss_fn)(values)
    return {"/".join(w.path.split("/")[-2:]): np_(g)
            for w, g in zip(layer.trainable_weights, grads, strict=True)}


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: attn_core.LuongAttention("bilinear"), "score='bilinear'"),
        (lambda: attn_core.LuongAttention("concat", units=0), "units=0"),
        (lambda: attn_core.BahdanauAttention(0), "units=0"),
        (lambda: attn_core.BahdanauAttention(-3), "units=-3"),
        (lambda: attn_core.LocalAttention(0), "window=0"),
        (lambda: attn_core.LocalAttention(2, mode="sideways"), "mode='sideways'"),
        (lambda: attn_core.BahdanauAttention(4, dropout=1.5), "dropout=1.5"),
    ],
)
def test_invalid_arguments(factory, message):
    with pytest.raises(ValueError, match=r"Expected .*Received: " + message.replace("(", r"\(")):
        factory()


def test_invalid_shapes():
    with pytest.raises(ValueError, match="Expected query and key of the same size"):
        attn_core.LuongAttention("dot")(rand(2, 3, 4), rand(2, 5, 6))
    with pytest.raises(ValueError, match="Expected `key` and `value` to have the same length"):
        attn_core.BahdanauAttention(4)(rand(2, 3, 4), rand(2, 5, 4), key=rand(2, 6, 4))
    with pytest.raises(ValueError, match=r"Expected `query` of rank 2 .* or rank 3"):
        attn_core.BahdanauAttention(4)(rand(2, 3, 4, 4), rand(2, 5, 4))
    with pytest.raises(ValueError, match="Expected `query_positions`"):
        attn_core.LocalAttention(2)(rand(2, 4), rand(2, 5, 4))
