"""Bahdanau's additive attention, with tensorflow/nmt's weight-normalised form."""

import math

import keras
from keras import ops

from attn_core.base_attention import BaseAttention


def validate_units(units, allow_none=False):
    """Raises ValueError unless `units` is a positive int (or None when allowed)."""
    if units is None and allow_none:
        return None
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"Expected `units` to be a positive integer. Received: units={units}")
    return units


def additive_score(query, key, v, bias=None):
    """vᵀ tanh(query + key (+ bias)) in float32.

    Args:
        query: projected query [B, T, U].
        key: projected key [B, S, U].
        v: [U].
        bias: optional [U].

    Returns:
        float32 scores [B, T, S].
    """
    q = ops.expand_dims(ops.cast(query, "float32"), 2)  # [B, T, 1, U]
    k = ops.expand_dims(ops.cast(key, "float32"), 1)  # [B, 1, S, U]
    hidden = q + k
    if bias is not None:
        hidden = hidden + ops.cast(bias, "float32")
    return ops.einsum("btsu,u->bts", ops.tanh(hidden), ops.cast(v, "float32"))


@keras.saving.register_keras_serializable(package="attn_core")
class BahdanauAttention(BaseAttention):
    """Bahdanau (additive) attention: score = vᵀ tanh(W_q q + W_k k).

    Keras' `AdditiveAttention` has no W_q, W_k or v; this is the score of
    Bahdanau et al. (2014) and of `tfa.seq2seq.BahdanauAttention`. With
    `normalize=True`, v is rescaled to g·v/‖v‖ with a learned scalar g and a
    bias b is added inside the tanh (Salimans & Kingma 2016), which is
    tensorflow/nmt's `normed_bahdanau`.

    Example:

    >>> layer = BahdanauAttention(units=16)
    >>> context, weights = layer(
    ...     keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 5, 8)),
    ...     return_attention_scores=True)
    >>> context.shape, weights.shape
    ((2, 3, 8), (2, 3, 5))

    Args:
        units: U, the size of the hidden layer of the score.
        normalize: bool, use the weight-normalised form.
        dropout: dropout on the attention weights.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments and returns: see `BaseAttention`.

    Raises:
        ValueError: when `units` is not a positive integer.
    """

    def __init__(self, units, normalize=False, dropout=0.0, **kwargs):
        super().__init__(dropout=dropout, **kwargs)
        self.units = validate_units(units)
        self.normalize = bool(normalize)

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, key_shape = self._check_shapes(
            query_shape, value_shape, key_shape
        )
        self.query_dense = keras.layers.Dense(
            self.units, use_bias=False, name="query_dense", dtype=self.dtype_policy
        )
        self.query_dense.build(query_shape)
        self.key_dense = keras.layers.Dense(
            self.units, use_bias=False, name="key_dense", dtype=self.dtype_policy
        )
        self.key_dense.build(key_shape)
        self.v = self.add_weight(
            name="v", shape=(self.units,), initializer=keras.initializers.RandomUniform(
                -math.sqrt(3.0 / self.units), math.sqrt(3.0 / self.units)
            ),
        )
        self.g = self.b = None
        if self.normalize:
            self.g = self.add_weight(
                name="g", shape=(), initializer=keras.initializers.Constant(
                    math.sqrt(1.0 / self.units)
                ),
            )
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")

    def _process_query(self, query):
        return self.query_dense(query)  # [B, T, U]

    def _process_key(self, key):
        return self.key_dense(key)  # [B, S, U]

    def _score(self, query, key):
        v = self.v
        if self.normalize:
            v = self.g * v * ops.rsqrt(ops.sum(ops.square(v)))
        return additive_score(query, key, v, self.b)  # [B, T, S]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, normalize=self.normalize)
        return config
