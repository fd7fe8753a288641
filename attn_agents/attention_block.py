"""`AttentionBlock`: a pre-LN transformer block of masked self-attention over tokens."""

import keras
from keras import ops

import attn_core


class AttentionBlock(keras.layers.Layer):
    """`x + MHA(LN(x))`, then `x + FFN(LN(x))`, over a set of tokens with a padding mask.

    Rank-1 tokens: when the tokens are `x_t * e_t + p_t` (a scalar times a direction, plus an
    offset: `VectorTokenizer`'s), pass `factors=(x, e, p)` and the block computes `LN(x)` and
    the Q, K, V projections in closed form. With `c(v) = v - mean(v)`, the layer norm of
    token t is `r_t (x_t c(e_t) + c(p_t)) * gamma + beta` with
    `1 / r_t^2 = mean((x_t c(e_t) + c(p_t))^2) + eps`, a quadratic in `x_t`, so each projection
    `LN(x) W + b` is `r_t (x_t a_t + b_t) + d` with `a_t = (c(e_t) * gamma) W`,
    `b_t = (c(p_t) * gamma) W` and `d = beta W + b`: T·D·3D multiply-adds per forward pass
    instead of B·T·D·3D, and no [B, T, D] layer norm. Same weights and the same function, up
    to float rounding. The projections come from `MultiHeadAttention.projection_weights` and
    the attention from its `attend_projected`.

    Args:
        d_model: D, the token width.
        num_heads: N.
        ff_dim: Hidden width of the feed-forward layer.

    Call arguments:
        tokens: [B, T, D].
        mask: bool [B, T], True = a real token (attend to it); None = every token is real.
        factors: optional `(x, e, p)`: x [B, T], e and p [T, D], with
            `tokens == x[..., None] * e + p`.

    Returns:
        [B, T, D]. Padded positions carry values but attend to nothing masked.
    """

    def __init__(self, d_model, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.supports_masking = True  # the output tokens keep the input's token mask
        self.norm1 = keras.layers.LayerNormalization(name="norm1", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.norm2 = keras.layers.LayerNormalization(name="norm2", dtype=self.dtype_policy)
        self.ff1 = keras.layers.Dense(ff_dim, activation="gelu", name="ff1",
                                      dtype=self.dtype_policy)
        self.ff2 = keras.layers.Dense(d_model, name="ff2", dtype=self.dtype_policy)

    def build(self, tokens_shape, mask_shape=None, factors_shape=None):
        shape = (None, None, self.d_model)
        self.norm1.build(shape)
        self.attention.build(shape, shape)
        self.norm2.build(shape)
        self.ff1.build(shape)
        self.ff2.build((None, None, self.ff_dim))

    def call(self, tokens, mask=None, factors=None):
        attend = (None if mask is None
                  else ops.logical_and(mask[:, None, :], mask[:, :, None]))  # [B, T, T]
        if factors is None:
            h = self.norm1(tokens)
            tokens = tokens + self.attention(h, h, attention_mask=attend)
        else:
            tokens = tokens + self._rank1_attention(tokens, factors, attend)
        return tokens + self.ff2(self.ff1(self.norm2(tokens)))

    def _rank1_attention(self, tokens, factors, attend):
        """`MHA(LN(tokens))` for tokens `x[..., None] * e + p`, without the projections'
        [B·T, D] x [D, 3D] matmul (see the class docstring)."""
        mha = self.attention
        x, e, p = (ops.cast(f, "float32") for f in factors)  # [B, T], [T, D], [T, D]
        e = e - ops.mean(e, axis=-1, keepdims=True)
        p = p - ops.mean(p, axis=-1, keepdims=True)
        variance = (x * x * ops.mean(e * e, axis=-1) + 2.0 * x * ops.mean(e * p, axis=-1)
                    + ops.mean(p * p, axis=-1))  # [B, T]
        r = ops.rsqrt(ops.maximum(variance, 0.0) + self.norm1.epsilon)[..., None]  # [B, T, 1]
        gamma = ops.cast(self.norm1.gamma, "float32")
        beta = ops.cast(self.norm1.beta, "float32")
        kernels, biases = mha.projection_weights("float32")  # [D, N*K] each
        sizes = [k.shape[1] for k in kernels]
        t = x.shape[1]
        # a_t, b_t for every token and d, for Q, K and V at once: [2T + 1, D] x [D, 3*N*K].
        rows = ops.concatenate([e * gamma, p * gamma, beta[None]], axis=0)
        abd = ops.matmul(rows, ops.concatenate(kernels, axis=1))
        d = abd[2 * t]
        if biases[0] is not None:
            d = d + ops.concatenate(biases, axis=0)
        qkv = r * (x[..., None] * abd[:t] + abd[t:2 * t]) + d  # [B, T, 3*N*K]
        qkv = ops.cast(qkv, self.compute_dtype)
        q, k, v = ops.split(qkv, [sizes[0], sizes[0] + sizes[1]], axis=-1)
        return mha.attend_projected(q, k, v, attention_mask=attend)

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads,
                                       "ff_dim": self.ff_dim}
