"""Layer factories and backend helpers shared by the layer tests."""

import keras
import numpy as np

import attn_core

# name -> (factory, query dim, value dim). Every score layer in one table.
SCORE_LAYERS = {
    "bahdanau": lambda: attn_core.BahdanauAttention(8),
    "bahdanau_normed": lambda: attn_core.BahdanauAttention(8, normalize=True),
    "luong_dot": lambda: attn_core.LuongAttention("dot"),
    "luong_general": lambda: attn_core.LuongAttention("general"),
    "luong_concat": lambda: attn_core.LuongAttention("concat", units=8),
    "luong_cosine": lambda: attn_core.LuongAttention("cosine"),
    "luong_scaled": lambda: attn_core.LuongAttention("general", scale=True),
    "local_m": lambda: attn_core.LocalAttention(2, mode="monotonic"),
    "local_p": lambda: attn_core.LocalAttention(2, mode="predictive", score="dot"),
}

# name -> expected number of weights for query dim 6, key dim 6.
WEIGHT_COUNTS = {
    "bahdanau": 3, "bahdanau_normed": 5, "luong_dot": 0, "luong_general": 1,
    "luong_concat": 3, "luong_cosine": 1, "luong_scaled": 2, "local_m": 1, "local_p": 2,
}


def jit(fn):
    """Compiles `fn` with XLA on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, autograph=False)  # as jax.jit: no AutoGraph
    if backend == "jax":
        import jax

        return jax.jit(fn)
    raise NotImplementedError(backend)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def lengths_mask(lengths, length):
    """bool [B, length], True for the first lengths[b] positions."""
    return np.arange(length)[None, :] < np.asarray(lengths)[:, None]


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))
