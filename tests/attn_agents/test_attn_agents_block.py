"""AttentionBlock: the closed-form first layer on rank-1 tokens equals the plain block."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_agents.attention_block import AttentionBlock
from attn_agents.vector_tokenizer import VectorTokenizer


def _block_and_tokens(seed=0, batch=5, features=4, d=16):
    # The layers' initial weights too: otherwise they depend on what ran before in this
    # process, and a bfloat16 comparison's margin with them.
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer = VectorTokenizer(features, d)
    block = AttentionBlock(d, 4, 32)
    x = tf.constant(rng.normal(size=(batch, features)).astype("float32") * 3.0)
    tokens, mask = tokenizer(x)
    block(tokens, mask)
    # Non-trivial layer-norm scale and shift and biases, so every term of the closed form
    # (gamma, beta, the projections' biases) is exercised.
    for w in block.weights + tokenizer.weights:
        w.assign(w + rng.normal(size=w.shape).astype("float32") * 0.3)
    return tokenizer, block, x


def test_vector_tokenizer_factors_rebuild_its_tokens():
    tokenizer, _, x = _block_and_tokens()
    tokens, _ = tokenizer(x)
    v, e, p = tokenizer.factors(x)
    np.testing.assert_allclose((v[..., None] * e + p).numpy(), tokens.numpy(), atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])  # XLA: the broadcast small-set layout
def test_rank1_block_equals_the_block_and_its_gradients(jit):
    tokenizer, block, x = _block_and_tokens()
    targets = tf.constant(np.random.default_rng(1).normal(size=(5, 4, 16)).astype("float32"))

    def run(use_factors):
        with tf.GradientTape() as tape:
            tokens, mask = tokenizer(x)
            out = (block(tokens, mask=None, factors=tokenizer.factors(x)) if use_factors
                   else block(tokens, mask))
            loss = tf.reduce_sum(tf.sin(out) * targets)
        variables = block.trainable_variables + tokenizer.trainable_variables
        return out, tape.gradient(loss, variables)

    run = tf.function(run, jit_compile=True, reduce_retracing=False,
                      autograph=False) if jit else run
    out, grads = run(True)
    ref_out, ref_grads = run(False)
    assert out.shape == (5, 4, 16)
    np.testing.assert_allclose(out.numpy(), ref_out.numpy(), rtol=1e-5, atol=1e-5)
    for g, ref in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(g.numpy(), ref.numpy(), rtol=1e-4, atol=1e-4)


def test_rank1_block_under_mixed_precision_stays_close():
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        tokenizer, block, x = _block_and_tokens(seed=2)
        tokens, mask = tokenizer(x)
        out = block(tokens, mask=None, factors=tokenizer.factors(x))
        ref = block(tokens, mask)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == ref.dtype == "bfloat16"
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(),
                               tf.cast(ref, tf.float32).numpy(), rtol=0.05, atol=0.1)
