"""Common absl flags of the training entry points.

Nothing is defined at import time: an entry point calls `define_common_flags()` (and
`validate_positive(...)` for its own flags) at module level, then
`common_config_from_flags()` inside `main`.
"""

import dataclasses

from absl import flags

from attn_core.precision import PRECISIONS
from attn_core.strategy import STRATEGIES


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Settings shared by every training entry point.

    Attributes:
        workdir: Explicit, resumable work directory, or `None` to let the caller create a fresh
            run directory.
        seed: Global random seed (>= 0).
        precision: `"float32"`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy: `"default"`, `"mirrored"` or `"multi_worker"`.
        cpu_devices: Logical CPU devices for `strategy="mirrored"` (`0`: use the GPUs).
        jit_compile: Whether to XLA-compile the train step.
    """

    workdir: str | None = None
    seed: int = 0
    precision: str = "float32"
    strategy: str = "default"
    cpu_devices: int = 0
    jit_compile: bool = False


def _validate(flag_values: flags.FlagValues, name: str, minimum: int, what: str) -> None:
    flags.register_validator(
        name,
        lambda value: value is None or value >= minimum,
        message=f"Expected --{name} to be {what}.",
        flag_values=flag_values,
    )


def validate_positive(flag_values: flags.FlagValues, name: str) -> None:
    """Registers a validator requiring the numeric flag `name` to be `> 0` (or unset).

    A bad value makes parsing fail with `flags.IllegalFlagValueError`, whose one-line message
    names the flag and the value.
    """
    _validate(flag_values, name, 1, "a positive integer (> 0)")


def validate_non_negative(flag_values: flags.FlagValues, name: str) -> None:
    """Registers a validator requiring the numeric flag `name` to be `>= 0` (or unset)."""
    _validate(flag_values, name, 0, "a non-negative integer (>= 0)")


def define_common_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines `--workdir --seed --precision --strategy --cpu_devices --jit_compile`.

    Flags that `flag_values` already has are left alone, so calling this twice (e.g. from two
    entry-point modules imported by one test run) is harmless.

    Args:
        flag_values: Where to define them; tests pass a fresh `flags.FlagValues()`.
    """
    definitions = {
        "workdir": lambda: flags.DEFINE_string(
            "workdir",
            None,
            "Resumable work directory (default: a fresh run directory).",
            flag_values=flag_values,
        ),
        "seed": lambda: flags.DEFINE_integer(
            "seed", 0, "Global random seed.", lower_bound=0, flag_values=flag_values
        ),
        "precision": lambda: flags.DEFINE_enum(
            "precision", "float32", PRECISIONS, "Keras dtype policy.", flag_values=flag_values
        ),
        "strategy": lambda: flags.DEFINE_enum(
            "strategy", "default", STRATEGIES, "tf.distribute strategy.", flag_values=flag_values
        ),
        "cpu_devices": lambda: flags.DEFINE_integer(
            "cpu_devices",
            0,
            "For --strategy=mirrored: split the CPU into this many devices.",
            lower_bound=0,
            flag_values=flag_values,
        ),
        "jit_compile": lambda: flags.DEFINE_bool(
            "jit_compile", False, "XLA-compile the train step.", flag_values=flag_values
        ),
    }
    for name, define in definitions.items():
        if name not in flag_values:
            define()


def common_config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> CommonConfig:
    """Builds a `CommonConfig` from parsed flags.

    Args:
        flag_values: Parsed flag values on which `define_common_flags` was called.

    Returns:
        The frozen `CommonConfig`.

    Raises:
        ValueError: If `flag_values` has not been parsed yet.
    """
    if not flag_values.is_parsed():
        raise ValueError(
            "Expected parsed flag values (call them with argv or run under app.run). "
            "Received: unparsed FlagValues"
        )
    fields = [field.name for field in dataclasses.fields(CommonConfig)]
    return CommonConfig(**{name: flag_values[name].value for name in fields})
