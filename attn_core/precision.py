"""Global Keras mixed-precision policy helpers.

The policy decides the compute dtype (`float16`/`bfloat16` under mixed precision) and the
variable dtype (always `float32` here) of every layer built after it is set.
"""

import contextlib
from collections.abc import Iterator

import keras

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise ValueError(
            f"Expected `precision` to be one of {PRECISIONS}. Received: precision={name!r}"
        )


def set_precision_policy(name: str) -> keras.DTypePolicy:
    """Sets the global Keras dtype policy.

    Layers created afterwards use it; layers that already exist keep their policy.

    Args:
        name: One of `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`.

    Returns:
        The `keras.DTypePolicy` that is now global.

    Raises:
        ValueError: If `name` is not a supported precision.
    """
    _check_precision(name)
    keras.config.set_dtype_policy(name)
    return keras.config.dtype_policy()


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[keras.DTypePolicy]:
    """Context manager that sets the global policy and restores the previous one on exit.

    Args:
        name: One of `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`.

    Yields:
        The `keras.DTypePolicy` active inside the block.

    Raises:
        ValueError: If `name` is not a supported precision.
    """
    _check_precision(name)
    previous = keras.config.dtype_policy()
    try:
        yield set_precision_policy(name)
    finally:
        keras.config.set_dtype_policy(previous)


def needs_loss_scaling(policy_name: str) -> bool:
    """Whether a custom training loop must use `keras.optimizers.LossScaleOptimizer`.

    Only float16 has a narrow enough exponent range for gradients to underflow; bfloat16 has the
    float32 range. (`Model.fit` wraps the optimizer itself under `mixed_float16`.)

    Args:
        policy_name: One of `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`.

    Returns:
        `True` for `"mixed_float16"`, `False` otherwise.

    Raises:
        ValueError: If `policy_name` is not a supported precision.
    """
    _check_precision(policy_name)
    return policy_name == "mixed_float16"
