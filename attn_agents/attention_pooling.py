"""`AttentionPooling`: a learned query attends over the tokens and returns one vector."""

import keras
from keras import ops

import attn_core
from attn_core import masking


class AttentionPooling(keras.layers.Layer):
    """Pools a masked set of tokens into one summary vector with a learned query.

    The query is a learned vector, the same for every example, so the layer computes
    `attn_core.MultiHeadAttention(query, LN(tokens))` without projecting every token to keys
    and values. Head n's score of token t is `LN(x_t) . (W_k,n q_n) + b_k,n . q_n`, and its
    context is `(sum_t w_t LN(x_t)) W_v,n + b_v,n`, since the weights sum to 1. Same weights
    and result as calling the attention layer, with 2·T·D² fewer multiply-adds per example.
    A small set is pooled as a broadcast product over [B, T, N, D] rather than B tiny
    [N, T] x [T, D] matmuls when the attention layer would take its broadcast layout
    (`MultiHeadAttention.uses_broadcast_layout`: a few tokens, under XLA), which XLA fuses.
    The weights come from the layer's public `projection_weights` and `output_weights`.

    Args:
        d_model: D.
        num_heads: N.

    Call arguments:
        tokens: [B, T, D].
        mask: bool [B, T], True = attend; None = every token is real.

    Returns:
        `(summary, weights)`: [B, D] and [B, T], the pooling weights averaged over the heads
        (each row sums to 1 over the real tokens).
    """

    def __init__(self, d_model, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads = d_model, num_heads
        # The token mask is an argument (Keras would warn that it is dropped otherwise);
        # the pooled [B, D] output has no token axis to carry it.
        self.supports_masking = True
        self.norm = keras.layers.LayerNormalization(name="norm", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.query = self.add_weight(shape=(1, 1, d_model), name="query",
                                     initializer=keras.initializers.RandomNormal(0, 0.02))

    def build(self, tokens_shape, mask_shape=None):
        self.norm.build((None, None, self.d_model))
        self.attention.build((None, 1, self.d_model), (None, None, self.d_model))

    def compute_mask(self, tokens, mask=None):
        return None

    def call(self, tokens, mask):
        h = self.norm(tokens)  # [B, T, D]
        mha, dtype = self.attention, h.dtype
        heads, d = self.num_heads, self.d_model
        (w_q, w_k, w_v), (b_q, b_k, b_v) = mha.projection_weights(dtype)  # [D, N*K] ...
        # The query's projection, [N, K], with the 1/sqrt(K) scale (in `w_q` and `b_q`).
        q = ops.matmul(ops.cast(ops.reshape(self.query, (1, d)), dtype), w_q)
        q = ops.reshape(q if b_q is None else q + b_q, (heads, -1))  # [N, K]
        score_weights = ops.einsum("dnk,nk->dn", ops.reshape(w_k, (d, heads, -1)), q)  # [D, N]
        scores = ops.matmul(h, score_weights)  # [B, T, N]
        if b_k is not None:
            # The key bias's term is the same for every token (it cancels in the softmax,
            # so its gradient is 0); it is kept so that the key bias stays a trained
            # variable, as in the attention layer.
            scores = scores + ops.sum(ops.reshape(b_k, (heads, -1)) * q, axis=-1)
        weights = masking.masked_softmax(scores, None if mask is None else mask[:, :, None],
                                         axis=1)  # [B, T, N] float32
        weights = ops.cast(weights, dtype)  # rows with no real token are all 0
        if mha.uses_broadcast_layout(self.query, h):
            pooled = ops.sum(weights[..., None] * h[:, :, None, :], axis=1)  # [B, N, D]
        else:
            pooled = ops.einsum("btn,btd->bnd", weights, h)  # [B, N, D]
        context = ops.einsum("bnd,dnk->bnk", pooled, ops.reshape(w_v, (d, heads, -1)))
        if b_v is not None:  # [B, N, V]
            value_bias = ops.reshape(b_v, (1, heads, -1))
            if mask is not None:  # no real token: no context, as in the attention layer
                value_bias = value_bias * ops.cast(ops.any(mask, axis=1), dtype)[:, None, None]
            context = context + value_bias
        w_o, b_o = mha.output_weights(dtype)  # [N*V, D], [D]
        output = ops.matmul(ops.reshape(context, (-1, w_o.shape[0])), w_o)
        if b_o is not None:
            output = output + b_o  # [B, D]
        return output, ops.mean(ops.cast(weights, "float32"), axis=-1)  # [B, D], [B, T]

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads}
