"""Luong's local attention: monotonic (local-m) and predictive (local-p)."""

import keras
from keras import ops

from attn_core.luong_attention import LuongAttention

MODES = ("monotonic", "predictive")


@keras.saving.register_keras_serializable(package="attn_core")
class LocalAttention(LuongAttention):
    """Luong et al. (2015) local attention over a window [p_t − D, p_t + D].

    - `monotonic` (local-m): p_t = t, the query's own position, clipped to
      the last valid source position.
    - `predictive` (local-p): p_t = (S − 1)·sigmoid(vᵀ tanh(W h_t)), where S
      is the example's unmasked source length, so p_t is a 0-based source
      position. The weights are multiplied by exp(−(s − p_t)² / (2σ²)) with
      σ = D / 2; gradients reach W and v through that factor.

    The Gaussian factor is applied as a log-prior added to the scores before
    the softmax, so the weights are Luong's a_t(s)·exp(...) renormalised to
    sum to 1 over the window (the contract every layer here keeps).

    Example:

    >>> layer = LocalAttention(window=2, mode="predictive", score="general")
    >>> layer(keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 7, 8))).shape
    (2, 3, 8)

    Args:
        window: D, the half-width of the window, a positive int.
        mode: "monotonic" or "predictive".
        score: the Luong score inside the window ("dot", "general", "concat",
            "cosine").
        scale: bool, learn a scalar that multiplies the score.
        units: hidden size of the `concat` score and of the position
            predictor; defaults to Dq.
        dropout: dropout on the attention weights.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        Those of `BaseAttention`, plus `query_positions`: the 0-based target
        position t of each query, an int, or a tensor [B] or [B, T]. It
        defaults to 0..T−1 for a query sequence and is required for a single
        decoder step in `monotonic` mode.

    Raises:
        ValueError: for `window <= 0`, an unknown `mode` or `score`, or a
            single-step monotonic query without `query_positions`.
    """

    def __init__(
        self, window, mode="monotonic", score="general", scale=False, units=None, dropout=0.0,
        **kwargs,
    ):
        super().__init__(score=score, scale=scale, units=units, dropout=dropout, **kwargs)
        if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
            raise ValueError(
                f"Expected `window` to be a positive integer. Received: window={window}"
            )
        if mode not in MODES:
            raise ValueError(f"Expected `mode` to be one of {MODES}. Received: mode={mode!r}")
        self.window = window
        self.mode = mode

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        if self.mode == "predictive":
            self.position_dense = keras.layers.Dense(
                self.units or query_shape[-1], activation="tanh", use_bias=False,
                name="position_dense", dtype=self.dtype_policy,
            )
            self.position_dense.build(query_shape)
            self.position_v = keras.layers.Dense(
                1, use_bias=False, name="position_v", dtype=self.dtype_policy
            )
            self.position_v.build(tuple(query_shape[:-1]) + (self.units or query_shape[-1],))

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        return_attention_scores=False,
        training=None,
        query_positions=None,
    ):
        if (
            self.mode == "monotonic"
            and len(query.shape) == 2
            and query_positions is None
        ):
            raise ValueError(
                "Expected `query_positions` for a single-step query [B, Dq] in monotonic "
                "mode. Received: query_positions=None"
            )
        return self._attend_inputs(
            query, value, key=key, query_mask=query_mask, value_mask=value_mask,
            key_mask=key_mask, return_attention_scores=return_attention_scores,
            training=training, query_positions=query_positions,
        )

    def _prior(self, query, key_valid, key_length, query_positions):
        """The window mask [B, T, S] and, in predictive mode, the Gaussian log-prior."""
        batch, q_len = ops.shape(query)[0], ops.shape(query)[1]
        if key_valid is not None:
            last = ops.sum(ops.cast(key_valid, "float32"), axis=-1) - 1.0  # [B]
        else:
            last = ops.full((batch,), ops.cast(key_length, "float32") - 1.0)
        last = ops.maximum(last, 0.0)[:, None]  # [B, 1]
        if self.mode == "predictive":
            hidden = self.position_dense(query)  # [B, T, U]
            centre = ops.sigmoid(ops.cast(self.position_v(hidden)[..., 0], "float32"))
            centre = last * centre  # [B, T]
        else:
            if query_positions is None:
                positions = ops.arange(q_len, dtype="float32")[None, :]  # [1, T]
            else:
                positions = ops.cast(ops.convert_to_tensor(query_positions), "float32")
                if len(positions.shape) == 1:
                    positions = positions[:, None]  # [B, 1]
            centre = ops.minimum(positions + ops.zeros((batch, q_len)), last)  # [B, T]
        source = ops.arange(key_length, dtype="float32")[None, None, :]  # [1, 1, S]
        distance = source - centre[..., None]  # [B, T, S]
        window = ops.less_equal(ops.abs(distance), float(self.window))
        bias = None
        if self.mode == "predictive":
            sigma = self.window / 2.0
            bias = -ops.square(distance) / (2.0 * sigma * sigma)
        return bias, window

    def get_config(self):
        config = super().get_config()
        config.update(window=self.window, mode=self.mode)
        return config
