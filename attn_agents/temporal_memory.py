"""`TemporalMemory`: causal attention of each step's summary over the last K summaries."""

import keras
from keras import ops

import attn_core


def memory_mask(episode_starts, num_queries, memory):
    """Which past steps each query step may attend to: causal, K wide, within one episode.

    Key step j is visible from query step i (position `S - L + i` of the sequence) when
    `0 <= pos(i) - j < K` and no episode starts in `(j, pos(i)]`.

    Example: starts `[1, 0, 1, 0]`, L=2, K=3 -> query rows (steps 2, 3):
    `[[0, 0, 1, 0], [0, 0, 1, 1]]`.

    Args:
        episode_starts: bool [B, S], True where a step is the first of its episode.
        num_queries: L, the last L steps are the queries.
        memory: K.

    Returns:
        bool [B, L, S], True = attend.
    """
    starts = ops.cast(episode_starts, "int32")
    episode = ops.cumsum(starts, axis=1)  # [B, S]
    length = ops.shape(starts)[1]
    keys = ops.arange(length)[None, :]  # [1, S]
    queries = (length - num_queries + ops.arange(num_queries))[:, None]  # [L, 1]
    window = ops.logical_and(keys <= queries, queries - keys < memory)  # [L, S]
    query_episode = episode[:, length - num_queries:]  # [B, L]
    same = ops.equal(query_episode[:, :, None], episode[:, None, :])  # [B, L, S]
    return ops.logical_and(same, window[None])


class TemporalMemory(keras.layers.Layer):
    """A pre-LN block: `h = s + MHA(LN(s), LN(memory))`, then `h + FFN(LN(h))`.

    Args:
        d_model: D.
        num_heads: N.
        ff_dim: Feed-forward width.

    Call arguments:
        queries: [B, L, D], the current steps' summaries.
        keys: [B, S, D], the summaries of the steps in memory (the queries' own included).
        mask: bool [B, L, S], True = attend (see `memory_mask`).

    Returns:
        `(outputs, weights)`: [B, L, D] and [B, L, S], weights averaged over heads.
    """

    def __init__(self, d_model, num_heads, ff_dim, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.query_norm = keras.layers.LayerNormalization(name="query_norm",
                                                          dtype=self.dtype_policy)
        self.key_norm = keras.layers.LayerNormalization(name="key_norm", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.ff_norm = keras.layers.LayerNormalization(name="ff_norm", dtype=self.dtype_policy)
        self.ff1 = keras.layers.Dense(ff_dim, activation="gelu", name="ff1",
                                      dtype=self.dtype_policy)
        self.ff2 = keras.layers.Dense(d_model, name="ff2", dtype=self.dtype_policy)

    def build(self, queries_shape, keys_shape=None, mask_shape=None):
        shape = (None, None, self.d_model)
        for norm in (self.query_norm, self.key_norm, self.ff_norm):
            norm.build(shape)
        self.attention.build(shape, shape)
        self.ff1.build(shape)
        self.ff2.build((None, None, self.ff_dim))

    def call(self, queries, keys, mask):
        k = self.key_norm(keys)
        out, scores = self.attention(self.query_norm(queries), k, attention_mask=mask,
                                     return_attention_scores=True)  # [B,L,D], [B,N,L,S]
        h = queries + out
        h = h + self.ff2(self.ff1(self.ff_norm(h)))
        return h, ops.mean(ops.cast(scores, "float32"), axis=1)

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads,
                                       "ff_dim": self.ff_dim}
