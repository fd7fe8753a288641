"""`AttentionBlock`: a pre-LN transformer block of masked self-attention over tokens."""

import keras
from keras import ops

import attn_core


class AttentionBlock(keras.layers.Layer):
    """`x + MHA(LN(x))`, then `x + FFN(LN(x))`, over a set of tokens with a padding mask.

    Args:
        d_model: D, the token width.
        num_heads: N.
        ff_dim: Hidden width of the feed-forward layer.

    Call arguments:
        tokens: [B, T, D].
        mask: bool [B, T], True = a real token (attend to it).

    Returns:
        [B, T, D]. Padded positions carry values but attend to nothing masked.
    """

    def __init__(self, d_model, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.norm1 = keras.layers.LayerNormalization(name="norm1", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.norm2 = keras.layers.LayerNormalization(name="norm2", dtype=self.dtype_policy)
        self.ff1 = keras.layers.Dense(ff_dim, activation="gelu", name="ff1",
                                      dtype=self.dtype_policy)
        self.ff2 = keras.layers.Dense(d_model, name="ff2", dtype=self.dtype_policy)

    def build(self, tokens_shape, mask_shape=None):
        shape = (None, None, self.d_model)
        self.norm1.build(shape)
        self.attention.build(shape, shape)
        self.norm2.build(shape)
        self.ff1.build(shape)
        self.ff2.build((None, None, self.ff_dim))

    def call(self, tokens, mask):
        attend = ops.logical_and(mask[:, None, :], mask[:, :, None])  # [B, T, T]
        h = self.norm1(tokens)
        tokens = tokens + self.attention(h, h, attention_mask=attend)
        return tokens + self.ff2(self.ff1(self.norm2(tokens)))

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads,
                                       "ff_dim": self.ff_dim}
