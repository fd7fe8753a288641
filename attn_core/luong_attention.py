"""Luong's multiplicative attention: dot, general, concat and cosine scores."""

import math

import keras
from keras import ops

from attn_core.bahdanau_attention import additive_score, validate_units
from attn_core.base_attention import BaseAttention

SCORES = ("dot", "general", "concat", "cosine")


@keras.saving.register_keras_serializable(package="attn_core")
class LuongAttention(BaseAttention):
    """Luong et al. (2015) global attention, with four score functions.

    - `dot`: qᵀk. Dq must equal Dk.
    - `general`: qᵀ W k, with W a [Dk, Dq] projection of the key.
    - `concat`: vᵀ tanh(W [q; k]), with W a [Dq + Dk, U] projection.
    - `cosine`: cos(q, k) times a learned temperature (initially 10, so the
      logits span [-10, 10]). Dq must equal Dk.

    `scale=True` multiplies any score by a learned scalar initialised to 1,
    which is tensorflow/nmt's `scaled_luong`.

    Example:

    >>> layer = LuongAttention("general")
    >>> layer(keras.ops.ones((2, 8)), keras.ops.ones((2, 5, 8))).shape
    (2, 8)

    Args:
        score: one of "dot", "general", "concat", "cosine".
        scale: bool, learn a scalar that multiplies the score.
        units: U, the hidden size of the `concat` score; defaults to Dq.
        dropout: dropout on the attention weights.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments and returns: see `BaseAttention`.

    Raises:
        ValueError: for an unknown `score`, `units <= 0`, or query and key
            sizes that the score cannot combine.
    """

    def __init__(self, score="dot", scale=False, units=None, dropout=0.0, **kwargs):
        super().__init__(dropout=dropout, **kwargs)
        if score not in SCORES:
            raise ValueError(f"Expected `score` to be one of {SCORES}. Received: score={score!r}")
        self.score = score
        self.scale = bool(scale)
        self.units = validate_units(units, allow_none=True)

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, key_shape = self._check_shapes(
            query_shape, value_shape, key_shape
        )
        d_query, d_key = query_shape[-1], key_shape[-1]
        if self.score in ("dot", "cosine") and d_query != d_key:
            raise ValueError(
                f"Expected query and key of the same size for score={self.score!r}. "
                f"Received: query.shape={query_shape}, key.shape={key_shape}"
            )
        if self.score == "general":
            self.key_dense = keras.layers.Dense(
                d_query, use_bias=False, name="key_dense", dtype=self.dtype_policy
            )
            self.key_dense.build(key_shape)
        elif self.score == "concat":
            units = self.units or d_query
            self.query_dense = keras.layers.Dense(
                units, use_bias=False, name="query_dense", dtype=self.dtype_policy
            )
            self.query_dense.build(query_shape)
            self.key_dense = keras.layers.Dense(
                units, use_bias=False, name="key_dense", dtype=self.dtype_policy
            )
            self.key_dense.build(key_shape)
            limit = math.sqrt(3.0 / units)
            self.v = self.add_weight(
                name="v", shape=(units,),
                initializer=keras.initializers.RandomUniform(-limit, limit),
            )
        elif self.score == "cosine":
            self.temperature = self.add_weight(
                name="temperature", shape=(), initializer=keras.initializers.Constant(10.0)
            )
        self.scale_weight = None
        if self.scale:
            self.scale_weight = self.add_weight(name="scale", shape=(), initializer="ones")

    def _process_query(self, query):
        if self.score == "concat":
            return self.query_dense(query)  # [B, T, U]
        return query

    def _process_key(self, key):
        if self.score in ("general", "concat"):
            return self.key_dense(key)  # [B, S, Dq] or [B, S, U]
        return key

    def _score(self, query, key):
        if self.score == "concat":
            scores = additive_score(query, key, self.v)
        else:
            query, key = ops.cast(query, "float32"), ops.cast(key, "float32")
            if self.score == "cosine":
                query = query * ops.rsqrt(ops.sum(ops.square(query), -1, keepdims=True) + 1e-12)
                key = key * ops.rsqrt(ops.sum(ops.square(key), -1, keepdims=True) + 1e-12)
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))  # [B, T, S]
            if self.score == "cosine":
                scores = scores * self.temperature
        if self.scale_weight is not None:
            scores = scores * self.scale_weight
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(score=self.score, scale=self.scale, units=self.units)
        return config
