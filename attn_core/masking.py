"""Mask helpers shared by every attention layer.

Small pure functions over `keras.ops`. Masks are boolean and True means
"attend". Letters: B batch, T query length, S key length.
"""

import keras
from keras import ops

try:  # Keras keeps implicit masks through this helper (a weak map on JAX arrays).
    from keras.src.backend.common.masking import get_keras_mask, set_keras_mask
except ImportError:  # pragma: no cover - older or newer Keras layouts

    def get_keras_mask(x):
        return getattr(x, "_keras_mask", None)

    def set_keras_mask(x, mask):
        try:
            x._keras_mask = mask
        except AttributeError:
            pass

_FLOAT16_MAX = 65504.0


def large_negative(dtype):
    """The large negative used for masked scores, chosen by dtype.

    Half precision cannot hold -1e9, so float16 scores are masked with the
    float16 maximum instead.

    Args:
        dtype: the dtype of the scores, a string or a dtype object.

    Returns:
        A Python float: `-65504.0` for float16, `-1e9` otherwise.
    """
    if keras.backend.standardize_dtype(dtype) == "float16":
        return -_FLOAT16_MAX
    return -1e9


def as_bool_mask(mask):
    """Casts an int, float or bool mask to bool (non-zero means attend), or None."""
    if mask is None:
        return None
    if keras.backend.standardize_dtype(mask.dtype) == "bool":
        return mask
    return ops.not_equal(mask, ops.zeros((), dtype=mask.dtype))


def merge_masks(*masks):
    """Logical AND of the masks that are not None; None if all are None.

    The masks must broadcast against each other, e.g. [B, T, 1] and [B, 1, S].
    """
    merged = None
    for mask in masks:
        if mask is None:
            continue
        mask = as_bool_mask(mask)
        merged = mask if merged is None else ops.logical_and(merged, mask)
    return merged


def causal_mask(query_length, key_length):
    """The lower-triangular mask of decoder self-attention.

    Position i may attend to positions j <= i (aligned at the start, as in
    `keras.layers.MultiHeadAttention`).

    Args:
        query_length: T, a Python int or a scalar tensor.
        key_length: S, a Python int or a scalar tensor.

    Returns:
        A bool tensor [1, T, S].
    """
    rows = ops.expand_dims(ops.arange(query_length), -1)  # [T, 1]
    cols = ops.expand_dims(ops.arange(key_length), 0)  # [1, S]
    return ops.expand_dims(ops.greater_equal(rows, cols), 0)


def has_any_key(mask, axis=-1):
    """Which rows of `mask` attend to at least one key, keeping dims.

    Args:
        mask: bool, e.g. [B, T, S] or a broadcastable [B, 1, S].
        axis: the key axis.

    Returns:
        bool with `axis` reduced to size 1, e.g. [B, T, 1].
    """
    return ops.any(as_bool_mask(mask), axis=axis, keepdims=True)


def masked_softmax(scores, mask=None, axis=-1, zero_empty_rows=True):
    """Softmax over `axis` in float32, where masked positions get weight 0.

    Masked scores get `large_negative(float32)` added, so their exp is
    exactly 0 beside any unmasked score. A row whose positions are all masked
    would come out uniform; with `zero_empty_rows` it is multiplied by 0, so
    it gives zeros, never NaN. Callers that zero such rows later, on a smaller
    tensor (the context), pass `zero_empty_rows=False` and `has_any_key`.

    Args:
        scores: a float tensor, e.g. [B, T, S]. It is cast to float32.
        mask: an optional bool tensor broadcastable to `scores`.
        axis: the axis, or a tuple of axes, to normalise over.
        zero_empty_rows: bool, zero the rows with no unmasked position.

    Returns:
        float32 weights with the shape of `scores`.
    """
    scores = ops.cast(scores, "float32")
    if mask is not None:
        # An additive bias built at the mask's own (often broadcast) shape: cheaper than a
        # full-size select, and its gradient passes straight through.
        mask = as_bool_mask(mask)
        bias = ops.where(mask, 0.0, large_negative("float32"))
        scores = scores + ops.cast(bias, "float32")
    if isinstance(axis, (tuple, list)) and len(axis) > 1:
        weights = ops.exp(scores - ops.logsumexp(scores, axis=axis, keepdims=True))
    else:
        weights = ops.softmax(scores, axis=axis[0] if isinstance(axis, (tuple, list)) else axis)
    if mask is None or not zero_empty_rows:
        return weights
    return weights * ops.cast(has_any_key(mask, axis), weights.dtype)
