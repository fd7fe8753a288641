"""Keeping the workers and replicas of a `tf.distribute` run in agreement.

Under `MultiWorkerMirroredStrategy` every worker runs the same Python training loop, and a
worker that takes another branch (stops early, skips an evaluation) leaves the others waiting
in a collective for ever. So the values that steer the loop come from the chief
(`chief_values`); at start-up `check_workers_agree` makes every worker fail with one clear
message when they do not hold the same run (another `--model_dir`, other flags or data), and
`check_same_step` when they resumed from different checkpoints. Inside `strategy.run`,
`global_moments`, `clip_summed_gradients` and `poison_unless_all_finite` make per-replica
statistics, gradient clipping and float16 skip decisions those of the global batch.

Every function here is a collective: call it on every worker (every replica, for those used
inside `strategy.run`), at the same points, the same number of times. With one worker the
worker-level ones run no TensorFlow op.
"""

import hashlib

import numpy as np
import tensorflow as tf

from attn_core import strategy
from attn_core.errors import UserError


def chief_values(dist, chief, values):
    """The chief's `values` on every worker.

    Args:
        dist: the `tf.distribute.Strategy`.
        chief: whether this process is the chief (`attn_core.strategy.is_chief`).
        values: floats; the other workers' are ignored (they may pass zeros).

    Returns:
        A list of floats, the chief's values (float64 throughout, and exact: the other
        workers add zeros).
    """
    values = np.asarray(values, np.float64).reshape(-1)
    if strategy.worker_info(dist)[1] == 1:
        return values.tolist()
    return strategy.worker_sum(dist, values if chief else np.zeros_like(values)).tolist()


def fingerprint_int(*parts):
    """A 52-bit integer digest of `parts` (bytes, str or arrays), exact as a float64."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        if not isinstance(part, bytes):
            part = np.ascontiguousarray(part).tobytes()
        digest.update(part)
    return int(digest.hexdigest()[:13], 16)


def check_workers_agree(dist, chief, values):
    """Raises on every worker when some worker's `values` differ from the chief's.

    Two collectives (the chief's values, then a count of the workers that differ), so that
    all the workers stop together rather than leaving the others in a collective.

    Args:
        dist: the `tf.distribute.Strategy`.
        chief: whether this process is the chief.
        values: name -> integer below 2**52 (a step, a `fingerprint_int`, a size).

    Raises:
        UserError: on every worker, naming on each one what it has of its own.
    """
    index, workers = strategy.worker_info(dist)
    if workers == 1:
        return
    names = sorted(values)
    mine = [float(values[name]) for name in names]
    differ = [name for name, a, b in zip(names, mine, chief_values(dist, chief, mine),
                                         strict=True) if a != b]
    disagreeing = int(round(strategy.worker_sum(dist, np.array([float(bool(differ))]))[0]))
    if disagreeing:
        what = f"this worker ({index}) differs from the chief in {', '.join(differ)}; " \
            if differ else ""
        raise UserError(
            f"{what}{disagreeing} of {workers} workers differ from the chief's run: give every "
            "worker the same --model_dir (on a filesystem they share), flags and data"
        )


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
        UserError: when some workers' steps differ.
    """
    count, total, squares = strategy.worker_sum(dist, [1.0, step, float(step) ** 2])
    if total * total != count * squares:
        raise UserError(
            "Expected every worker to resume from the same checkpoint of the shared "
            f"--model_dir. Received: steps averaging {total / count:g} (this worker: {step})")


def any_worker(dist, flag: bool) -> bool:
    """Whether `flag` is true on any worker; every worker gets the same answer."""
    return bool(strategy.worker_sum(dist, [float(flag)])[0] > 0.0)


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
