"""`multi_categorical`: the action distribution of a MultiDiscrete action space."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# The logit of a padding class: exp(-1e9 - max logit) is exactly 0 in float32, so a padding
# class is never sampled nor the mode, and (unlike -inf) it keeps log-softmax and the entropy
# finite.
PAD_LOGIT = -1e9


def multi_categorical(logits, nvec):
    """A product of independent Categoricals, one per component of a MultiDiscrete space.

    The components may have different sizes: each one's logits are padded to the largest
    size M with `PAD_LOGIT`, then the [B, C, M] Categoricals are made one event of shape
    [C] (`tfd.Independent`): `log_prob` and `entropy` are the sums over the components,
    `sample` and `mode` give [B, C] int32.

    Example:
    >>> dist = multi_categorical(tf.zeros((2, 5)), [2, 3])
    >>> tuple(dist.sample(seed=(1, 2)).shape), float(dist.entropy()[0])  # log 2 + log 3
    ((2, 2), 1.791759...)

    Args:
        logits: float [B, sum(nvec)], the components' logits one after the other.
        nvec: The number of values of each component, `[n_1, ..., n_C]`.

    Returns:
        A `tfd.Independent` over [B, C] Categoricals.
    """
    nvec = [int(n) for n in np.ravel(nvec)]
    width = max(nvec)
    parts = tf.split(logits, nvec, axis=-1)
    padded = [tf.pad(part, [[0, 0], [0, width - n]], constant_values=PAD_LOGIT)
              for part, n in zip(parts, nvec, strict=True)]
    return tfd.Independent(tfd.Categorical(logits=tf.stack(padded, axis=1)),
                           reinterpreted_batch_ndims=1)
