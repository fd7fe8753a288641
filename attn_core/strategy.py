"""`tf.distribute` strategy factory for the TensorFlow-backend training entry points."""

import functools
import json
import os

from attn_core.errors import UserError

STRATEGIES = ("default", "mirrored", "multi_worker")


def _split_cpu(tf, num_devices: int) -> list[str]:
    """Splits the physical CPU into `num_devices` logical devices and returns their names.

    Raises:
        RuntimeError: If TensorFlow's runtime is already initialized with fewer logical CPUs.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if num_devices > 1 and (current is None or len(current) != num_devices):
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
            )
        except RuntimeError as e:
            available = len(tf.config.list_logical_devices("CPU"))
            if available < num_devices:
                raise RuntimeError(
                    f"Expected to split the CPU into {num_devices} logical devices, but the "
                    f"TensorFlow runtime is already initialized with {available}: call "
                    "make_strategy('mirrored', cpu_devices=...) first in the program, before "
                    f"any TensorFlow op runs. Received: cpu_devices={num_devices}"
                ) from e
    return [f"/cpu:{i}" for i in range(num_devices)]


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    try:
        config = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or "cluster" not in config:
        raise UserError(
            "Expected the TF_CONFIG environment variable to hold a JSON object with a "
            f"'cluster' key for strategy='multi_worker'. Received: TF_CONFIG={raw!r}"
        )


def make_strategy(name: str = "default", cpu_devices: int = 0):
    """Creates a `tf.distribute.Strategy`.

    Build the model and optimizer under `strategy.scope()`; the global batch is split into
    `strategy.num_replicas_in_sync` per-replica batches.

    Args:
        name: `"default"` (no distribution: `tf.distribute.get_strategy()`), `"mirrored"`
            (synchronous data parallelism over the local devices) or `"multi_worker"`
            (`MultiWorkerMirroredStrategy` configured from the `TF_CONFIG` env var).
        cpu_devices: For `"mirrored"`: when `> 1`, or when there is no GPU, split the physical
            CPU into this many logical devices (at least 1) and mirror over `/cpu:0..N-1`.
            `0` means "use the GPUs" (or one CPU device when there is none).

    Returns:
        The `tf.distribute.Strategy`.

    Raises:
        UserError: If `name` or `cpu_devices` is invalid, or `TF_CONFIG` is missing or
            malformed for `"multi_worker"`.
        RuntimeError: If the CPU must be split but TensorFlow is already initialized; call
            this function before anything else touches TensorFlow.
    """
    if name not in STRATEGIES:
        raise UserError(
            f"Expected `strategy` to be one of {STRATEGIES}. Received: strategy={name!r}"
        )
    if isinstance(cpu_devices, bool) or not isinstance(cpu_devices, int) or cpu_devices < 0:
        raise UserError(
            "Expected `cpu_devices` to be a non-negative integer. "
            f"Received: cpu_devices={cpu_devices!r}"
        )
    if name == "multi_worker":
        _check_tf_config()  # before importing TF: cheap and gives a clear error.

    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_devices <= 1 and tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    devices = _split_cpu(tf, max(cpu_devices, 1))
    return tf.distribute.MirroredStrategy(
        devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def worker_info(strategy) -> tuple[int, int]:
    """Returns `(worker_index, num_workers)` of this process under `strategy`.

    `(0, 1)` for the default and mirrored strategies. Under `MultiWorkerMirroredStrategy` the
    workers are numbered in `TF_CONFIG` order: a `"chief"` task first, then the `"worker"`
    tasks, so index 0 is always the chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 0, 1
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get("chief", []))
    workers = len(spec.get("worker", []))
    if resolver.task_type == "chief":
        return 0, chiefs + workers
    if resolver.task_type == "worker":
        return chiefs + int(resolver.task_id), chiefs + workers
    raise UserError(
        "Expected this process's TF_CONFIG task type to be 'chief' or 'worker'. "
        f"Received: task type {resolver.task_type!r}"
    )


def is_chief(strategy) -> bool:
    """Whether this process writes checkpoints, summaries and metrics (worker index 0)."""
    return worker_info(strategy)[0] == 0


def weights_fingerprint(variables) -> str:
    """SHA-256 (first 16 hex digits) of the values of `variables`, in order.

    Two workers whose training kept them in sync print the same fingerprint.
    """
    import hashlib

    import keras
    import numpy as np

    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return digest.hexdigest()[:16]


@functools.cache
def _sum_over_workers_fn(strategy):
    """One `tf.function` a strategy: float64 [N] -> its sum over the first replica of each
    worker (global replica ids run worker by worker, in blocks of the local replicas)."""
    import tensorflow as tf

    local = max(strategy.num_replicas_in_sync // worker_info(strategy)[1], 1)

    def replica_fn(value):
        ctx = tf.distribute.get_replica_context()
        first = tf.equal(tf.math.floormod(ctx.replica_id_in_sync_group, local), 0)
        # tf.where copies the value onto the replica's device (the input has none).
        return ctx.all_reduce("SUM", tf.where(first, value, tf.zeros_like(value)))

    @tf.function(reduce_retracing=True)
    def total(value):
        return strategy.experimental_local_results(strategy.run(replica_fn, args=(value,)))[0]

    return total


def worker_sum(strategy, values):
    """The sum over the workers of `strategy` of a float64 vector each worker passes.

    A collective: every worker must call it at the same point of its program, the same
    number of times, or the workers hang. With one worker it runs no TensorFlow op.

    Args:
        strategy: A `tf.distribute.Strategy`.
        values: Numbers, this worker's [N].

    Returns:
        float64 NumPy array [N], the same on every worker (exact for integers below 2**53).
    """
    import numpy as np

    values = np.asarray(values, np.float64).reshape(-1)
    if worker_info(strategy)[1] == 1:
        return values.copy()
    import tensorflow as tf

    return np.asarray(_sum_over_workers_fn(strategy)(tf.constant(values)))


def barrier(strategy) -> None:
    """Waits until every worker of `strategy` gets here (a no-op on one worker).

    Every worker must call it, the same number of times.
    """
    worker_sum(strategy, [1.0])
