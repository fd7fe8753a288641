"""`TemporalMemory`: attention of each step's summary over the window of its last K steps."""

import math

import keras
from keras import ops

import attn_core
from attn_agents.gru_gate import GRUGate
from attn_agents.policy_config import MEMORY_GATES, MEMORY_READS


def memory_windows(summaries, episode_starts, num_queries, memory):
    """The K-step window of each of the last L steps of a sequence, and what it may see.

    The window of the step at position `p` holds positions `p - K + 1 .. p`, oldest first
    (the step itself last), as `Agent.act` builds it from its cache. A position is visible
    when it exists and no episode starts in `(j, p]`.

    Example: starts `[1, 0, 1, 0]`, L=2, K=3 -> mask rows (steps 2, 3): `[[0, 0, 1], [0, 1, 1]]`.

    Args:
        summaries: [B, S, D], one summary per step.
        episode_starts: bool [B, S], True where a step is the first of its episode.
        num_queries: L, the last L steps are the queries.
        memory: K.

    Returns:
        `(windows, mask)`: [B, L, K, D] and bool [B, L, K], True = attend.
    """
    length = ops.shape(episode_starts)[1]
    episode = ops.cumsum(ops.cast(episode_starts, "int32"), axis=1)  # [B, S], ids >= 0
    pad = memory - 1  # steps before the sequence: never visible (episode id -1)
    episode = ops.pad(episode, [[0, 0], [pad, 0]], constant_values=-1)  # [B, P + S]
    summaries = ops.pad(summaries, [[0, 0], [pad, 0], [0, 0]])
    # Query i sits at padded position pad + S - L + i; its window starts K - 1 before it.
    first = length - num_queries + ops.arange(num_queries)  # [L]
    index = first[:, None] + ops.arange(memory)[None, :]  # [L, K], padded positions
    windows = ops.take(summaries, index, axis=1)  # [B, L, K, D]
    key_episode = ops.take(episode, index, axis=1)  # [B, L, K]
    query_episode = ops.take(episode, first + pad, axis=1)  # [B, L]
    return windows, ops.equal(key_episode, query_episode[:, :, None])


class TemporalMemory(keras.layers.Layer):
    """A pre-LN block over a step's window: `h = s + MHA(LN(s), LN(window) + P)`, then
    `h + FFN(LN(h))`.

    P is a learned embedding of each position in the window (how many steps ago), so the
    block can tell the previous step from older ones, e.g. to take a velocity from two
    positions.

    With `gate="gru"` the two residual additions become GTrXL's gated connections
    (Parisotto et al. 2020): `h = g1(s, ReLU(MHA(...)))`, then `g2(h, ReLU(FFN(LN(h))))`,
    each a `GRUGate` whose bias makes the block start near the identity on `s`.

    Args:
        d_model: D.
        num_heads: N.
        ff_dim: Feed-forward width.
        memory: K, the window length.
        gate: One of `MEMORY_GATES`: "none" (plain residual additions) or "gru".
        read: One of `MEMORY_READS`: "softmax" (the weights over the window sum to one) or
            "sigmoid" (each weight `sigmoid(q·k - log K)` on its own, so the read is a sum
            that can count the matching steps; Ramapuram et al. 2024).

    Call arguments:
        queries: [B, D], the current steps' summaries.
        windows: [B, K, D], the summaries of each query's last K steps, oldest first (the
            query's own last).
        mask: bool [B, K], True = attend (see `memory_windows`).

    Returns:
        `(outputs, weights)`: [B, D] and [B, K], weights averaged over heads.

    Raises:
        ValueError: If `gate` is not one of `MEMORY_GATES` or `read` not one of
            `MEMORY_READS`.
    """

    def __init__(self, d_model, num_heads, ff_dim, memory, gate="none", read="softmax",
                 **kwargs):
        super().__init__(**kwargs)
        if gate not in MEMORY_GATES:
            raise ValueError(f"Expected `gate` to be one of {MEMORY_GATES}. "
                             f"Received: gate={gate!r}")
        if read not in MEMORY_READS:
            raise ValueError(f"Expected `read` to be one of {MEMORY_READS}. "
                             f"Received: read={read!r}")
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.memory, self.gate, self.read = memory, gate, read
        self.query_norm = keras.layers.LayerNormalization(name="query_norm",
                                                          dtype=self.dtype_policy)
        self.key_norm = keras.layers.LayerNormalization(name="key_norm", dtype=self.dtype_policy)
        self.attention = attn_core.MultiHeadAttention(
            num_heads, d_model // num_heads, name="attention", dtype=self.dtype_policy)
        self.ff_norm = keras.layers.LayerNormalization(name="ff_norm", dtype=self.dtype_policy)
        self.ff1 = keras.layers.Dense(ff_dim, activation="gelu", name="ff1",
                                      dtype=self.dtype_policy)
        self.ff2 = keras.layers.Dense(d_model, name="ff2", dtype=self.dtype_policy)
        self.gates = ([GRUGate(d_model, name=f"{where}_gate", dtype=self.dtype_policy)
                       for where in ("attention", "ff")] if gate == "gru" else [])

    def build(self, queries_shape, windows_shape=None, mask_shape=None):
        self.position = self.add_weight(
            shape=(self.memory, self.d_model), name="position",
            initializer=keras.initializers.RandomNormal(stddev=0.02))  # [K, D]
        shape = (None, None, self.d_model)
        for norm in (self.query_norm, self.key_norm, self.ff_norm):
            norm.build(shape)
        self.attention.build(shape, shape)
        self.ff1.build((None, self.d_model))
        self.ff2.build((None, self.ff_dim))
        for gate in self.gates:
            gate.build((None, self.d_model))

    def call(self, queries, windows, mask):
        keys = self.key_norm(windows) + ops.cast(self.position, self.compute_dtype)  # [B,K,D]
        if self.read == "sigmoid":
            (w_q, w_k, w_v), (b_q, b_k, b_v) = self.attention.projection_weights()
            q, k, v = (ops.matmul(x, w) for x, w in ((self.query_norm(queries), w_q),
                                                      (keys, w_k), (keys, w_v)))
            if b_q is not None:
                q, k, v = q + b_q, k + b_k, v + b_v
            return self._finish(queries, *self._sigmoid_read(q, k, v, mask))
        out, scores = self.attention(self.query_norm(queries[:, None]), keys,
                                     attention_mask=mask[:, None, :],
                                     return_attention_scores=True)  # [B,1,D], [B,N,1,K]
        return self._finish(queries, out, scores)

    def attend_sequence(self, summaries, episode_starts, num_queries):
        """The block for each of the last L steps of a sequence over its own K-step window.

        The same function as `call(queries, windows, mask)` on the windows and mask of
        `memory_windows(summaries, episode_starts, num_queries, K)` with the last L
        summaries as queries, up to float rounding, but the keys' layer norm and their key
        and value projections run once per step of the sequence, [B, S], instead of once
        per window slot, [B, L, K]: each step sits in up to K windows. The position
        embedding enters the projections linearly, `(LN(s) + P_j) W + b = LN(s) W +
        (P_j W + b)`, so the projected steps are gathered into windows and `P_j W + b` is
        added there. The training forward pass (`ActorCritic.sequence_forward`) takes it.

        Args:
            summaries: [B, S, D], one summary per step, S >= L.
            episode_starts: bool [B, S], True where a step is the first of its episode.
            num_queries: L.

        Returns:
            `(outputs, weights)`: [B * L, D] and [B * L, K] (queries in sequence order).
        """
        with keras.name_scope(self.name):
            dtype, k, d = self.compute_dtype, self.memory, self.d_model
            summaries = ops.cast(summaries, dtype)
            (w_q, w_k, w_v), (b_q, b_k, b_v) = self.attention.projection_weights(dtype)
            kernel = ops.concatenate([w_k, w_v], axis=1)  # [D, N*K + N*V]
            steps = ops.matmul(self.key_norm(summaries), kernel)  # [B, S, N*K + N*V]
            with keras.name_scope("memory_windows"):  # a part of the update in a profile
                windows, mask = memory_windows(steps, episode_starts, num_queries, k)
            offsets = ops.matmul(ops.cast(self.position, dtype), kernel)  # [K, N*K + N*V]
            if b_k is not None:
                offsets = offsets + ops.concatenate([b_k, b_v], axis=0)
            windows = ops.reshape(windows + offsets, (-1, k, kernel.shape[1]))  # [B*L, K, .]
            keys, values = ops.split(windows, [w_k.shape[1]], axis=-1)
            queries = ops.reshape(summaries[:, -num_queries:], (-1, d))  # [B*L, D]
            q = ops.matmul(self.query_norm(queries), w_q)
            if b_q is not None:
                q = q + b_q
            if self.read == "sigmoid":
                return self._finish(queries, *self._sigmoid_read(q, keys, values,
                                                                 ops.reshape(mask, (-1, k))))
            out, scores = self.attention.attend_projected(
                q[:, None], keys, values, attention_mask=ops.reshape(mask, (-1, 1, k)),
                return_attention_scores=True)  # [B*L, 1, D], [B*L, N, 1, K]
            return self._finish(queries, out, scores)

    def _sigmoid_read(self, q, k, v, mask):
        """Sigmoid attention of projected queries [B, N·Dk] (scale included) over projected
        keys and values [B, K, N·Dk], [B, K, N·Dv] with bool mask [B, K]: each weight
        `sigmoid(q·k - log K)` on its own, so the read sums the matching steps' values.

        Returns `(out, weights)`: [B, 1, D] through the output projection, and [B, N, 1, K].
        """
        n, k_len = self.num_heads, self.memory
        dtype = self.compute_dtype
        qh = ops.reshape(q, (-1, n, 1, q.shape[-1] // n))  # [B, N, 1, Dk]
        kh = ops.transpose(ops.reshape(k, (-1, k_len, n, k.shape[-1] // n)),
                           (0, 2, 3, 1))  # [B, N, Dk, K]
        vh = ops.transpose(ops.reshape(v, (-1, k_len, n, v.shape[-1] // n)),
                           (0, 2, 1, 3))  # [B, N, K, Dv]
        scores = ops.matmul(ops.cast(qh, "float32"), ops.cast(kh, "float32"))  # [B,N,1,K]
        weights = ops.sigmoid(scores - math.log(k_len)) * ops.cast(
            mask[:, None, None, :], "float32")
        weights = ops.cast(weights, dtype)
        context = ops.matmul(weights, vh)  # [B, N, 1, Dv]
        context = ops.reshape(ops.transpose(context, (0, 2, 1, 3)), (-1, 1, n * vh.shape[-1]))
        kernel, bias = self.attention.output_weights()
        out = ops.matmul(context, kernel)
        if bias is not None:
            out = out + bias
        return out, weights

    def _finish(self, queries, out, scores):
        """The residual (or gate) around the attention's output [B, 1, D], the feed-forward
        sublayer, and the weights [B, N, 1, K] averaged over the heads."""
        out = out[:, 0]  # [B, D]
        h = self.gates[0](queries, ops.relu(out)) if self.gates else queries + out
        ff = self.ff2(self.ff1(self.ff_norm(h)))
        h = self.gates[1](h, ops.relu(ff)) if self.gates else h + ff
        return h, ops.mean(ops.cast(scores[:, :, 0], "float32"), axis=1)

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "num_heads": self.num_heads,
                                       "ff_dim": self.ff_dim, "memory": self.memory,
                                       "gate": self.gate, "read": self.read}
