"""The shared masking, softmax and weighted-sum path of the score layers."""

import keras
from keras import ops

from attn_core import masking


@keras.saving.register_keras_serializable(package="attn_core")
class BaseAttention(keras.layers.Layer):
    """Base class of the score-based attention layers.

    Subclasses define only how a query and a key are scored
    (`_process_query`, `_process_key`, `_score`, and optionally `_prior`).
    Masking, the float32 softmax, dropout and the weighted sum of values are
    written once, here.

    Letters: B batch, T query length, S key length, D feature size.

    Args:
        dropout: float in [0, 1), dropout applied to the attention weights in
            training.
        **kwargs: passed to `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        query: [B, T, Dq], or one decoder step [B, Dq].
        value: [B, S, Dv].
        key: optional [B, S, Dk]; defaults to `value`.
        query_mask: optional bool [B, T] ([B] for one step); False rows get a
            zero context and zero weights. Filled in from Keras' implicit
            mask when not given.
        value_mask: optional bool [B, S]; False keys get zero weight. Filled
            in from Keras' implicit mask when not given.
        key_mask: optional bool [B, S], combined with `value_mask` by AND.
        return_attention_scores: if True, also return the weights.
        training: Python bool, whether dropout is active.

    Returns:
        The context, [B, T, Dv] (or [B, Dv] for one step), in the compute
        dtype; with `return_attention_scores=True`, also the weights
        [B, T, S] (or [B, S]), in the compute dtype. Weights over the
        unmasked keys sum to 1; a query with no unmasked key gets zeros.
    """

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"Expected `dropout` to be a float in [0, 1). Received: dropout={dropout}"
            )
        self.dropout = float(dropout)
        self.supports_masking = True
        self._dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None

    # ---- hooks for subclasses -------------------------------------------------

    def _process_query(self, query):
        """[B, T, Dq] -> the query as `_score` wants it. Identity by default."""
        return query

    def _process_key(self, key):
        """[B, S, Dk] -> the key as `_score` wants it. Identity by default.

        It depends only on the key, so a decoder can compute it once per
        source sentence (see `AttentionRNNCell`).
        """
        return key

    def _score(self, query, key):
        """Processed query [B, T, .] and key [B, S, .] -> float32 scores [B, T, S]."""
        raise NotImplementedError

    def _prior(self, query, key_valid, key_length, query_positions):
        """An optional float32 bias [B, T, S] added to the scores, and a bool
        mask [B, T, S] merged into the key mask. (None, None) by default.

        Args:
            query: the raw query [B, T, Dq].
            key_valid: None or bool [B, S].
            key_length: S, an int or a scalar tensor.
            query_positions: None, or what the caller passed.
        """
        del query, key_valid, key_length, query_positions
        return None, None

    # ---- shared path ------------------------------------------------------------

    @staticmethod
    def _check_shapes(query_shape, value_shape, key_shape):
        key_shape = value_shape if key_shape is None else key_shape
        if len(query_shape) not in (2, 3):
            raise ValueError(
                "Expected `query` of rank 2 [B, Dq] or rank 3 [B, T, Dq]. "
                f"Received: query.shape={tuple(query_shape)}"
            )
        if len(value_shape) != 3 or len(key_shape) != 3:
            raise ValueError(
                "Expected `value` and `key` of rank 3 [B, S, D]. "
                f"Received: value.shape={tuple(value_shape)}, key.shape={tuple(key_shape)}"
            )
        s_v, s_k = value_shape[1], key_shape[1]
        if s_v is not None and s_k is not None and s_v != s_k:
            raise ValueError(
                "Expected `key` and `value` to have the same length S. "
                f"Received: value.shape={tuple(value_shape)}, key.shape={tuple(key_shape)}"
            )
        return tuple(query_shape), tuple(value_shape), tuple(key_shape)

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
    ):
        return self._attend_inputs(
            query,
            value,
            key=key,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )

    def _attend_inputs(
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
        self._check_shapes(query.shape, value.shape, None if key is None else key.shape)
        key = value if key is None else key
        context, weights = self.attend(
            query,
            value,
            self._process_key(key),
            query_mask=query_mask,
            key_valid=masking.merge_masks(value_mask, key_mask),
            training=training,
            query_positions=query_positions,
        )
        if return_attention_scores:
            return context, weights
        return context

    def attend(
        self,
        query,
        value,
        processed_key,
        query_mask=None,
        key_valid=None,
        training=None,
        query_positions=None,
    ):
        """Attention with a key already passed through `_process_key`.

        The call path, and the decoder step of `AttentionRNNCell`, which
        processes the memory once per sentence.

        Args:
            query: [B, T, Dq] or [B, Dq].
            value: [B, S, Dv].
            processed_key: `self._process_key(key)`, [B, S, .].
            query_mask: optional bool [B, T] or [B].
            key_valid: optional bool [B, S].
            training: Python bool.
            query_positions: optional positions of the queries, for layers
                whose `_prior` uses them.

        Returns:
            (context [B, T, Dv] or [B, Dv], weights [B, T, S] or [B, S]), both
            in the compute dtype.
        """
        single_step = len(query.shape) == 2
        if single_step:
            query = ops.expand_dims(query, 1)  # [B, 1, Dq]
            if query_mask is not None and len(query_mask.shape) == 1:
                query_mask = ops.expand_dims(query_mask, 1)  # [B, 1]
        key_valid = masking.as_bool_mask(key_valid)
        query_mask = masking.as_bool_mask(query_mask)

        scores = self._score(self._process_query(query), processed_key)  # [B, T, S] f32
        bias, window = self._prior(
            query, key_valid, ops.shape(processed_key)[1], query_positions
        )
        if bias is not None:
            scores = scores + bias
        mask = None if key_valid is None else ops.expand_dims(key_valid, 1)  # [B, 1, S]
        if query_mask is not None:
            mask = masking.merge_masks(mask, ops.expand_dims(query_mask, -1))  # [B, T, S]
        mask = masking.merge_masks(mask, window)
        weights = masking.masked_softmax(scores, mask)  # [B, T, S] f32
        if self._dropout_layer is not None:
            weights = self._dropout_layer(weights, training=training)

        weights = ops.cast(weights, self.compute_dtype)
        context = ops.matmul(weights, ops.cast(value, self.compute_dtype))  # [B, T, Dv]
        if query_mask is not None:
            context = context * ops.cast(ops.expand_dims(query_mask, -1), context.dtype)
        if single_step:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def compute_mask(self, query, previous_mask=None):
        return previous_mask

    def get_config(self):
        config = super().get_config()
        config["dropout"] = self.dropout
        return config
