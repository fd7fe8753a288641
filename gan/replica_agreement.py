"""Keeping the replicas (and the workers) of a `tf.distribute` strategy in agreement.

Every function here runs an all-reduce, a collective op: every replica of every worker
must call it at the same point of the program, the same number of times, or the workers
hang.
"""

import numpy as np
import tensorflow as tf

from attn_core import strategy


def poison_unless_all_finite(grads):
    """Makes the gradients of every replica non-finite when those of any replica are.

    `keras.optimizers.LossScaleOptimizer` decides whether to apply the gradients or to
    halve the loss scale from one replica's own, not yet summed, gradients (its own
    replica's, or the first local replica's under a merge-call strategy such as
    `MirroredStrategy` on CPUs). Replicas or workers that decided differently would
    diverge, and only some of them would run the inner optimizer's all-reduce. Adding 0
    (NaN when any replica has an inf or a NaN) leaves finite gradients bit-identical and
    gives every replica the same decision. Call it in a replica context (`strategy.run`).

    Args:
        grads: a list of gradient tensors (`None` entries are kept).

    Returns:
        The gradients, unchanged when every replica's are finite, NaN everywhere otherwise.
    """
    present = [tf.convert_to_tensor(g) for g in grads if g is not None]
    finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in present]))
    bad = tf.distribute.get_replica_context().all_reduce(
        "SUM", 1.0 - tf.cast(finite, tf.float32))  # [] replicas with non-finite gradients
    offset = tf.where(bad > 0.0, tf.constant(np.nan, tf.float32), 0.0)
    return [None if g is None else tf.convert_to_tensor(g) + tf.cast(offset, g.dtype)
            for g in grads]


def check_same_step(dist, step: int) -> None:
    """Raises on every worker when the workers resumed from different steps.

    The steps s_w of the W workers agree iff (Σ s_w)² = W·Σ s_w² (Cauchy-Schwarz), a test
    every worker evaluates on the same all-reduced sums, so all of them raise or none.

    Args:
        dist: the `tf.distribute.Strategy`.
        step: this worker's resumed step.

    Raises:
        RuntimeError: when some workers' steps differ.
    """
    count, total, squares = strategy.worker_sum(dist, [1.0, step, float(step) ** 2])
    if total * total != count * squares:
        raise RuntimeError(
            "Expected every worker to resume from the same checkpoint of the shared "
            f"--model_dir. Received: steps averaging {total / count:g} (this worker: {step})")


def any_worker(dist, flag: bool) -> bool:
    """Whether `flag` is true on any worker; every worker gets the same answer."""
    return bool(strategy.worker_sum(dist, [float(flag)])[0] > 0.0)
