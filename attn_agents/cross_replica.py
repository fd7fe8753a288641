"""Statistics and gradient clipping over the global minibatch, inside `strategy.run`.

With several replicas (local devices or workers), each replica computes the loss of its own
part of the minibatch. What must describe the whole minibatch is all-reduced here, in the
replica context, so that one update on R replicas equals the update of one replica on the
union of their batches: the advantages' mean and variance, and the gradients' global norm.
"""

import tensorflow as tf


def global_moments(x):
    """Mean and (population) variance of `x` over the `x` of all replicas.

    Sums, squared sums and counts are all-reduced in float64, so `E[x^2] - E[x]^2` does not
    lose the variance of large, similar values to float32 cancellation.

    Args:
        x: float [M], this replica's values (M may differ between replicas).

    Returns:
        `(mean, variance)`, scalars of `x`'s dtype, the same on every replica.
    """
    x64 = tf.cast(x, tf.float64)
    local = tf.stack([tf.cast(tf.size(x), tf.float64), tf.reduce_sum(x64),
                      tf.reduce_sum(tf.square(x64))])
    count, total, squares = tf.unstack(
        tf.distribute.get_replica_context().all_reduce("SUM", local))
    mean = total / count
    variance = tf.maximum(squares / count - tf.square(mean), 0.0)
    return tf.cast(mean, x.dtype), tf.cast(variance, x.dtype)


def clip_summed_gradients(grads, clip_norm):
    """Scales this replica's gradients so that their sum over replicas has norm <= `clip_norm`.

    Keras optimizers clip each replica's gradients before they are summed, which is not the
    global norm of the minibatch's gradient; build the optimizer without clipping and clip
    here instead: the sum is all-reduced, its global norm gives the scale, and the optimizer's
    own all-reduce then sums the scaled gradients (`scale * sum = the clipped gradient`).

    Args:
        grads: This replica's gradients (tensors, `IndexedSlices` or None), for its loss
            already divided by the number of replicas.
        clip_norm: The largest global norm of the summed gradient.

    Returns:
        The scaled gradients, dense (None stays None).
    """
    dense = [None if g is None else tf.convert_to_tensor(g) for g in grads]
    present = [g for g in dense if g is not None]
    summed = tf.distribute.get_replica_context().all_reduce("SUM", present)
    norm = tf.linalg.global_norm(summed)
    scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm)  # as Keras' global_clipnorm
    return [None if g is None else g * tf.cast(scale, g.dtype) for g in dense]
