"""`AttentionPooling`: a learned query attends over the tokens and returns one vector."""

import keras
from keras import ops

import attn_core


class AttentionPooling(keras.layers.Layer):
    """Pools a masked set of tokens into one summary vector with a learned query.

    Args:
        d_model: D.
        num_heads: N.

    Call arguments:
        tokens: [B, T, D].
        mask: bool [B, T], True = attend.

    Returns:
        `(summary, weights)`: [B, D] and [B, T], the pooling weights averaged over the heads
        (each row sums to 1 over the real tokens).
    """

    def __init__(self, d_model, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads = d_model, num_heads
        self.norm = keras.layers.LayerNormalization(name="norm", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.query = self.add_weight(shape=(1, 1, d_model), name="query",
                                     initializer=keras.initializers.RandomNormal(0, 0.02))

    def build(self, tokens_shape, mask_shape=None):
        self.norm.build((None, None, self.d_model))
        self.attention.build((None, 1, self.d_model), (None, None, self.d_model))

    def call(self, tokens, mask):
        h = self.norm(tokens)  # [B, T, D]
        query = ops.broadcast_to(ops.cast(self.query, h.dtype),
                                 (ops.shape(h)[0], 1, self.d_model))  # [B, 1, D]
        pooled, scores = self.attention(query, h, attention_mask=mask[:, None, :],
                                        return_attention_scores=True)  # [B,1,D], [B,N,1,T]
        return pooled[:, 0, :], ops.mean(ops.cast(scores, "float32"), axis=1)[:, 0, :]

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads}
