"""Precision: which Keras dtype policy a run uses, and loss scaling for float16.

One answer for every trainer:

* `resolve_precision("auto")` picks `mixed_bfloat16` on GPUs that compute in bfloat16
  (compute capability >= 8.0), `mixed_float16` on older CUDA GPUs and `float32` on CPUs.
* `wrap_optimizer` wraps an optimizer in a `keras.optimizers.LossScaleOptimizer` when, and
  only when, the policy computes in float16. Every Keras 3 optimizer has `scale_loss` (an
  identity unless it is a `LossScaleOptimizer`), so a training step always calls
  `optimizer.scale_loss(loss)` and `optimizer.apply(grads)`, which unscales, whatever the
  policy.
* `loss_scale` and `skipped_step` report the health of float16 training: the scale, and
  whether the last update was skipped for non-finite gradients, judged from a snapshot of
  the scale taken before the update.
"""

import contextlib
from collections.abc import Iterator

import keras

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
POLICIES = PRECISIONS[1:]
PRECISION_HELP = ("Keras dtype policy: auto (mixed_bfloat16 on GPUs of compute capability "
                  ">= 8.0, mixed_float16 with loss scaling on older CUDA GPUs, float32 on "
                  "CPU), float32, mixed_float16 or mixed_bfloat16.")


def _check_precision(name: str, allowed=POLICIES) -> None:
    if name not in allowed:
        raise ValueError(
            f"Expected `precision` to be one of {allowed}. Received: precision={name!r}"
        )


def _gpu_capabilities() -> list[tuple[int, int]]:
    """The CUDA compute capabilities of the visible GPUs ([] on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        caps = []
        for gpu in tf.config.list_physical_devices("GPU"):
            cap = tf.config.experimental.get_device_details(gpu).get("compute_capability")
            caps.append(tuple(cap) if cap else (0, 0))
        return caps
    if backend == "jax":
        import jax

        caps = []
        for device in jax.devices():
            if device.platform == "gpu":
                cap = str(getattr(device, "compute_capability", "0.0"))
                major, _, minor = cap.partition(".")
                caps.append((int(major or 0), int(minor or 0)))
        return caps
    return []


def resolve_precision(name: str, capabilities: list[tuple[int, int]] | None = None) -> str:
    """The dtype policy name that `name` stands for on this machine.

    Args:
        name: `"auto"` or one of `POLICIES`, which is returned as is.
        capabilities: The GPUs' compute capabilities (default: probed); for tests.

    Returns:
        One of `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`.

    Raises:
        ValueError: If `name` is not one of `PRECISIONS`.
    """
    _check_precision(name, PRECISIONS)
    if name != "auto":
        return name
    caps = _gpu_capabilities() if capabilities is None else capabilities
    if not caps:
        return "float32"
    # bfloat16 has float32's range (no loss scaling) but runs fast only from Ampere on.
    return "mixed_bfloat16" if min(caps) >= (8, 0) else "mixed_float16"


def set_precision_policy(name: str) -> keras.DTypePolicy:
    """Sets the global Keras dtype policy.

    Layers created afterwards use it; layers that already exist keep their policy.

    Args:
        name: One of `PRECISIONS` (`"auto"` is resolved first).

    Returns:
        The `keras.DTypePolicy` that is now global.

    Raises:
        ValueError: If `name` is not a supported precision.
    """
    keras.config.set_dtype_policy(resolve_precision(name))
    return keras.config.dtype_policy()


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[keras.DTypePolicy]:
    """Context manager that sets the global policy and restores the previous one on exit.

    Args:
        name: One of `PRECISIONS`.

    Yields:
        The `keras.DTypePolicy` active inside the block.

    Raises:
        ValueError: If `name` is not a supported precision.
    """
    resolved = resolve_precision(name)
    previous = keras.config.dtype_policy()
    try:
        yield set_precision_policy(resolved)
    finally:
        keras.config.set_dtype_policy(previous)


def needs_loss_scaling(policy_name: str) -> bool:
    """Whether a custom training loop must scale its loss.

    Only float16 has a narrow enough exponent range for gradients to underflow; bfloat16 has
    the float32 range.

    Args:
        policy_name: One of `PRECISIONS` (`"auto"` is resolved first).

    Returns:
        `True` when the policy computes in float16.
    """
    return resolve_precision(policy_name) == "mixed_float16"


def wrap_optimizer(optimizer: keras.optimizers.Optimizer,
                   policy_name: str) -> keras.optimizers.Optimizer:
    """The optimizer a training loop uses under `policy_name`.

    A `keras.optimizers.LossScaleOptimizer` around `optimizer` for float16, else `optimizer`
    itself. Either way the loop calls `scale_loss(loss)` before the gradient and `apply`
    after it: the wrapper unscales, skips non-finite updates and adapts the scale.

    Args:
        optimizer: The inner optimizer.
        policy_name: One of `PRECISIONS`.

    Returns:
        The optimizer to train with.
    """
    if needs_loss_scaling(policy_name) and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def inner_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that holds the update's state: a `LossScaleOptimizer`'s inner one.

    Checkpoints keep it as the optimizer (and the scale apart, `loss_scale_state`), so its
    variables are the same under every policy and a run may resume under another one.
    """
    return getattr(optimizer, "inner_optimizer", optimizer)


def loss_scale_state(optimizer: keras.optimizers.Optimizer) -> dict:
    """`{"scale": float, "good_steps": int}` of a `LossScaleOptimizer` ({} otherwise), for a
    checkpoint's extra state."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return {}
    return {"scale": float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)),
            "good_steps": int(keras.ops.convert_to_numpy(optimizer.step_counter))}


def restore_loss_scale(optimizer: keras.optimizers.Optimizer, state: dict | None) -> None:
    """Puts back a `loss_scale_state`; nothing to do without one (a checkpoint of another
    policy) or without loss scaling (a float16 checkpoint resumed under another policy)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and state:
        optimizer.dynamic_scale.assign(state["scale"])
        optimizer.step_counter.assign(state["good_steps"])


def loss_scale(optimizer: keras.optimizers.Optimizer):
    """The current loss scale as a float32 tensor (1.0 without loss scaling).

    The value is read now (a copy, not the variable), so a snapshot taken before an update
    can be compared with the scale after it.
    """
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        if not optimizer.built:  # no `dynamic_scale` variable yet: it will start here
            return keras.ops.convert_to_tensor(float(optimizer.initial_scale), "float32")
        return keras.ops.copy(keras.ops.convert_to_tensor(optimizer.dynamic_scale))
    return keras.ops.convert_to_tensor(1.0, "float32")


def skipped_step(optimizer: keras.optimizers.Optimizer, scale_before):
    """1 (int32) when the update after `scale_before = loss_scale(optimizer)` was skipped.

    A `LossScaleOptimizer` halves its scale exactly when it skips an update for non-finite
    gradients (it only ever grows it otherwise), so a smaller scale means a skipped step.
    """
    return keras.ops.cast(keras.ops.less(loss_scale(optimizer), scale_before), "int32")
