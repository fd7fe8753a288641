"""The chunked (online-softmax, recomputing) attention path against the plain one."""

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from layer_cases import np_, rand

import attn_core
from attn_core import chunked_attention as chunked

pytestmark = pytest.mark.backend_neutral


def _value_and_grads(fn, inputs):
    """fn(*inputs) and the gradients of sum(fn · cos fn) with respect to every input."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            out = fn(*tensors)
            loss = tf.reduce_sum(out * tf.cos(out))
        return [np_(out)] + [np_(g) for g in tape.gradient(loss, tensors)]
    if backend == "jax":
        import jax

        def loss(*args):
            out = fn(*args)
            return (out * jax.numpy.cos(out)).sum()

        grads = jax.grad(loss, argnums=tuple(range(len(inputs))))(*inputs)
        return [np_(fn(*inputs))] + [np_(g) for g in grads]
    raise NotImplementedError(backend)


def _assert_close(ours, reference, atol=2e-5):
    for name, a, b in zip(["output", "d_query", "d_key", "d_value"], ours, reference,
                          strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-4, err_msg=name)


MASKS = {
    "none": None,
    "key_padding": (np.arange(70)[None, None, :] < np.array([70, 41])[:, None, None]),
    "full": np.random.default_rng(3).random((2, 37, 70)) > 0.3,
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("chunk_size", [16, 64, 128])
def test_forward_and_gradients_equal_the_plain_path(mask, chunk_size):
    # S = 70 is not a multiple of any chunk size: the padded tail block is masked out.
    q, k, v = rand(2, 3, 37, 8, seed=0), rand(2, 3, 70, 8, seed=1), rand(2, 3, 70, 5, seed=2)
    m = MASKS[mask]
    ours = _value_and_grads(lambda *x: chunked.chunked_attention(*x, m, chunk_size=chunk_size),
                            [q, k, v])
    reference = _value_and_grads(lambda *x: chunked.plain_attention(*x, m), [q, k, v])
    _assert_close(ours, reference)


def test_causal_equals_the_plain_path():
    q, k, v = rand(1, 2, 50, 4, seed=4), rand(1, 2, 50, 4, seed=5), rand(1, 2, 50, 6, seed=6)
    ours = _value_and_grads(
        lambda *x: chunked.chunked_attention(*x, use_causal_mask=True, chunk_size=16), [q, k, v])
    reference = _value_and_grads(
        lambda *x: chunked.plain_attention(*x, use_causal_mask=True), [q, k, v])
    _assert_close(ours, reference)
    # The first query sees only the first key.
    np.testing.assert_allclose(ours[0][:, :, 0], v[:, :, 0], atol=1e-6)


def test_a_query_with_no_key_gets_zeros_not_nan():
    q, k, v = rand(1, 1, 4, 4), rand(1, 1, 40, 4), rand(1, 1, 40, 3)
    mask = np.ones((1, 4, 40), bool)
    mask[0, 2] = False
    out, dq, dk, dv = _value_and_grads(
        lambda *x: chunked.chunked_attention(*x, mask, chunk_size=16), [q, k, v])
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dq))
    np.testing.assert_array_equal(out[0, 0, 2], 0.0)
    np.testing.assert_array_equal(dq[0, 0, 2], 0.0)


def test_large_scores_stay_finite():
    # Scores of +-1000 overflow a naive exp; the running maximum keeps them finite.
    q = np.full((1, 1, 3, 2), 30.0, "float32")
    k = rand(1, 1, 33, 2) * 30.0
    v = rand(1, 1, 33, 2)
    ours = _value_and_grads(lambda *x: chunked.chunked_attention(*x, chunk_size=8), [q, k, v])
    reference = _value_and_grads(chunked.plain_attention, [q, k, v])
    assert all(np.all(np.isfinite(x)) for x in ours)
    _assert_close(ours, reference, atol=1e-3)


def test_half_precision_inputs_keep_their_dtype():
    q, k, v = (keras.ops.cast(rand(1, 2, 9, 4, seed=s), "float16") for s in range(3))
    out = chunked.chunked_attention(q, k, v, chunk_size=4)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    reference = chunked.plain_attention(*(keras.ops.cast(x, "float32") for x in (q, k, v)))
    np.testing.assert_allclose(np_(out).astype("float32"), np_(reference), atol=5e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_size=True), "chunk_size"),
        (dict(use_causal_mask=True), "T == S"),
    ],
)
def test_bad_arguments(kwargs, message):
    q, k, v = rand(1, 1, 3, 2), rand(1, 1, 5, 2), rand(1, 1, 5, 2)
    with pytest.raises(ValueError, match=message):
        chunked.chunked_attention(q, k, v, **kwargs)


def test_automatic_choice():
    assert chunked.use_chunked(chunked.AUTO_MIN_KEYS, False, False)
    assert not chunked.use_chunked(chunked.AUTO_MIN_KEYS - 1, False, False)
    assert not chunked.use_chunked(10**6, True, False)  # scores requested
    assert not chunked.use_chunked(10**6, False, True)  # attention dropout
    assert not chunked.use_chunked(10**6, False, False, requested=False)
    assert chunked.use_chunked(4, False, False, requested=True)
    with pytest.raises(ValueError, match="return_attention_scores"):
        chunked.use_chunked(4, True, False, requested=True)


MHA_CASES = {
    "cross": dict(),
    "value_mask": dict(value_mask=np.arange(70)[None, :] < np.array([[70], [23]])),
    "query_and_value_masks": dict(
        query_mask=np.arange(37)[None, :] < np.array([[37], [30]]),
        value_mask=np.arange(70)[None, :] < np.array([[70], [23]])),
    "attention_mask": dict(attention_mask=np.random.default_rng(1).random((2, 37, 70)) > 0.2),
}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multi_head_attention_chunked_equals_plain(case):
    query, value = rand(2, 37, 16, seed=7), rand(2, 70, 16, seed=8)
    chunked_layer = attn_core.MultiHeadAttention(4, 8, chunked_attention=True, chunk_size=16)
    plain_layer = attn_core.MultiHeadAttention(4, 8, chunked_attention=False)
    chunked_layer(query, value)
    plain_layer(query, value)
    plain_layer.set_weights(chunked_layer.get_weights())
    kwargs = MHA_CASES[case]
    np.testing.assert_allclose(np_(chunked_layer(query, value, **kwargs)),
                               np_(plain_layer(query, value, **kwargs)), atol=2e-5)


def test_multi_head_attention_chunked_causal_self_attention():
    x = rand(2, 40, 16, seed=9)
    chunked_layer = attn_core.MultiHeadAttention(2, 8, chunked_attention=True, chunk_size=16)
    plain_layer = attn_core.MultiHeadAttention(2, 8, chunked_attention=False)
    chunked_layer(x)
    plain_layer(x)
    plain_layer.set_weights(chunked_layer.get_weights())
    np.testing.assert_allclose(np_(chunked_layer(x, use_causal_mask=True)),
                               np_(plain_layer(x, use_causal_mask=True)), atol=2e-5)


def test_multi_head_attention_refuses_scores_on_the_forced_chunked_path():
    layer = attn_core.MultiHeadAttention(2, 4, chunked_attention=True)
    x = rand(1, 5, 8)
    with pytest.raises(ValueError, match="return_attention_scores"):
        layer(x, x, return_attention_scores=True)
    with pytest.raises(ValueError, match="chunked_attention"):
        attn_core.MultiHeadAttention(2, 4, chunked_attention="yes")
    with pytest.raises(ValueError, match="chunk_size"):
        attn_core.MultiHeadAttention(2, 4, chunk_size=-1)


def test_multi_head_attention_config_round_trip():
    layer = attn_core.MultiHeadAttention(2, 4, chunked_attention=True, chunk_size=64)
    clone = attn_core.MultiHeadAttention.from_config(layer.get_config())
    assert (clone.chunked_attention, clone.chunk_size) == (True, 64)


# The eager GradientTape: TensorFlow's eager `tf.custom_gradient` runs the forward pass while
# the caller's tape records, and a tape that recorded the key-block loop would keep every
# block's probabilities until the backward pass, O(T·S) memory in all.
tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="the eager GradientTape is TensorFlow's")


def _mha_pair(**kwargs):
    """A chunked MultiHeadAttention and a plain one with the same weights."""
    chunked_layer = attn_core.MultiHeadAttention(chunked_attention=True, **kwargs)
    plain_layer = attn_core.MultiHeadAttention(chunked_attention=False,
                                               **{k: v for k, v in kwargs.items()
                                                  if k != "chunk_size"})
    return chunked_layer, plain_layer


@tensorflow_only
def test_eager_tape_keeps_one_block_of_probabilities_at_a_time(monkeypatch):
    import gc
    import weakref

    import tensorflow as tf

    length, chunk, heads = 160, 16, 2
    blocks = length // chunk
    # Counts the [B, N, T, C] probability blocks (the outputs of exp) alive at once: the tape
    # of the old code held all `blocks` of them (exp's gradient needs its output).
    made, peak = [], [0]

    class ExpSpy:
        def __getattr__(self, name):
            return getattr(keras.ops, name)

        @staticmethod
        def exp(x):
            out = keras.ops.exp(x)
            if tuple(out.shape) == (1, heads, length, chunk) and not tf.is_symbolic_tensor(out):
                made.append(weakref.ref(out))
                alive = sum(r() is not None for r in made)
                if alive > 2:  # only a reference cycle could hold them: count after collecting
                    gc.collect()
                    alive = sum(r() is not None for r in made)
                peak[0] = max(peak[0], alive)
            return out

    x = tf.constant(rand(1, length, 16, seed=10))
    chunked_layer, plain_layer = _mha_pair(num_heads=heads, key_dim=8, chunk_size=chunk)
    chunked_layer(x[:, :4])
    plain_layer(x[:, :4])
    plain_layer.set_weights(chunked_layer.get_weights())

    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, use_causal_mask=True)
            loss = tf.reduce_sum(out * tf.cos(out))
        return [out] + tape.gradient(loss, [x] + layer.trainable_variables)

    monkeypatch.setattr(chunked, "ops", ExpSpy())
    # The collections above look at this test's objects only: the test process runs without
    # automatic collection (conftest.py), and freeing the earlier tests' objects can stall.
    gc.freeze()
    try:
        ours = grads(chunked_layer)
    finally:
        gc.unfreeze()
    monkeypatch.undo()
    assert len(made) == 2 * blocks  # forward and backward, executed eagerly
    assert peak[0] <= 2, f"{peak[0]} of {blocks} probability blocks alive at once"
    reference = grads(plain_layer)
    for i, (a, b) in enumerate(zip(ours, reference, strict=True)):
        np.testing.assert_allclose(np_(a), np_(b), atol=2e-5, rtol=1e-4, err_msg=f"tensor {i}")


@tensorflow_only
def test_eager_forward_and_backward_peak_memory_is_below_the_score_matrix():
    # End to end, in a fresh process (its own peak RSS): an eager forward + backward of the
    # layer at T = S = 3072 grows the peak by less than twice one float32 [N, T, S] matrix
    # (288 MiB); the old code's tape kept several of them (about 5x).
    length, heads, chunk = 3072, 8, 128
    bound_mib = 2 * heads * length * length * 4 / 2**20
    script = f"""
import resource
import numpy as np, tensorflow as tf
import attn_core
layer = attn_core.MultiHeadAttention({heads}, 64, chunked_attention=True, chunk_size={chunk})
x = tf.constant(np.random.default_rng(0).normal(size=(1, {length}, 512)), tf.float32)
def step(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(layer(x)))
    return tape.gradient(loss, [x] + layer.trainable_variables)
step(x[:, :{chunk}])  # builds the layer, warms the allocator
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
step(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)  # MiB
"""
    root = pathlib.Path(__file__).resolve().parents[2]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    grown_mib = float(result.stdout.strip().splitlines()[-1])
    assert grown_mib < bound_mib, f"peak RSS grew {grown_mib:.0f} MiB (bound {bound_mib:.0f})"
