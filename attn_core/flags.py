"""Command-line flags of the entry points, generated from the frozen configs.

Nothing is defined at import time: an entry point calls `define_common_flags()` and
`define_config_flags(SomeConfig)` at module level, then builds its configs inside `main` with
`common_config_from_flags()` and `config_from_flags(SomeConfig)`. The help text of a flag is
the doc of its config field (the `Attributes:` section of the config's docstring), so help
and config can't drift apart. Every flag defined here is made a key flag of the entry point,
so its `--help` lists it.
"""

import dataclasses
import inspect
import re
import sys
from collections.abc import Collection, Mapping

from absl import flags

from attn_core.precision import PRECISIONS
from attn_core.strategy import STRATEGIES


@dataclasses.dataclass(frozen=True)
class CommonConfig:
    """Settings shared by every training entry point.

    Attributes:
        seed: Global random seed (>= 0); a run is reproducible on the CPU.
        precision: Keras dtype policy: auto (mixed_bfloat16 on GPUs of compute capability
            >= 8.0, mixed_float16 with loss scaling on older CUDA GPUs, float32 on CPU),
            float32, mixed_float16 or mixed_bfloat16.
        strategy: tf.distribute strategy: default (one device), mirrored (the local GPUs,
            or --cpu_devices CPU devices) or multi_worker (the cluster in TF_CONFIG).
        cpu_devices: With --strategy=mirrored: split the CPU into this many devices (0: use
            the GPUs).
        jit_compile: XLA-compile the train step.
    """

    seed: int = 0
    precision: str = "auto"
    strategy: str = "default"
    cpu_devices: int = 0
    jit_compile: bool = False


def field_docs(cls) -> dict[str, str]:
    """`{field: one-line help}` from the `Attributes:` section of `cls`'s docstring.

    Continuation lines (indented deeper than the field's line) are joined to it.
    """
    doc = inspect.getdoc(cls) or ""
    docs: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return docs
    field_re = re.compile(r"^(\s+)(\w+)(?: \([^)]*\))?:\s*(.*)$")
    indent = None
    name = None
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section
        match = field_re.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent = len(match.group(1))
            name = match.group(2)
            docs[name] = match.group(3).strip()
        elif name and line.strip():
            docs[name] = f"{docs[name]} {line.strip()}"
    return docs


def _make_key_flag(flag_values: flags.FlagValues, name: str) -> None:
    """Lists `--name` in the entry point's `--help` (absl shows the main module's key flags)."""
    flag_values.register_key_flag_for_module(sys.argv[0], flag_values[name])


def define_config_flags(cls, flag_values: flags.FlagValues = flags.FLAGS,
                        skip: Collection[str] = (), enums: Mapping[str, Collection[str]] = None,
                        defaults: Mapping[str, object] = None,
                        bounds: Mapping[str, tuple] = None) -> None:
    """Defines one flag per field of the dataclass `cls`, with the field's doc as help.

    Booleans become `--name/--noname`, ints and floats numeric flags (ints and floats are
    non-negative unless `bounds` says otherwise), strings string flags, and fields listed in
    `enums` enum flags. Fields typed `X | None` default to None. Flags that already exist
    are left alone.

    Args:
        cls: A dataclass whose fields all have defaults.
        flag_values: Where to define them; tests pass a fresh `flags.FlagValues()`.
        skip: Fields not to define (the entry point defines them itself).
        enums: `{field: allowed values}`.
        defaults: `{field: default}` overriding the dataclass's for the command line.
        bounds: `{field: (lower, upper)}`; either may be None.

    Raises:
        ValueError: If a field has no doc in `cls`'s docstring.
    """
    docs = field_docs(cls)
    instance = cls()
    enums, defaults, bounds = dict(enums or {}), dict(defaults or {}), dict(bounds or {})
    for field in dataclasses.fields(cls):
        name = field.name
        if name in skip:
            continue
        if name not in docs:
            raise ValueError(f"Expected a doc for every field of {cls.__name__} (its help "
                             f"text). Received: no `{name}:` in its Attributes section")
        if name not in flag_values:
            default = defaults.get(name, getattr(instance, name))
            kind = field.type if isinstance(field.type, type) else type(default)
            if isinstance(field.type, str):  # `from __future__ import annotations`
                kind = type(default)
            lower, upper = bounds.get(name, (0, None))
            common = {"flag_values": flag_values}
            if name in enums:
                flags.DEFINE_enum(name, default, list(enums[name]), docs[name], **common)
            elif kind is bool:
                flags.DEFINE_bool(name, default, docs[name], **common)
            elif kind is int:
                flags.DEFINE_integer(name, default, docs[name], lower_bound=lower,
                                     upper_bound=upper, **common)
            elif kind is float:
                flags.DEFINE_float(name, default, docs[name], lower_bound=lower,
                                   upper_bound=upper, **common)
            else:
                flags.DEFINE_string(name, default, docs[name], **common)
        _make_key_flag(flag_values, name)


def make_key_flags(*names: str, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Lists the flags `names` in the running entry point's `--help`."""
    for name in names:
        _make_key_flag(flag_values, name)


def define_once(kind: str, name: str, default, help_text: str,
                flag_values: flags.FlagValues = flags.FLAGS, **kwargs) -> None:
    """`flags.DEFINE_<kind>(name, ...)` unless `--name` exists; a key flag either way.

    For flags an entry point shares with others that one process (a test) may set up too.

    Args:
        kind: "string", "bool", "integer", "float" or "enum" (then pass `enum_values=`).
        name, default, help_text, kwargs: As for `flags.DEFINE_<kind>`.
    """
    if name not in flag_values:
        getattr(flags, f"DEFINE_{kind}")(name, default, help=help_text,
                                         flag_values=flag_values, **kwargs)
    _make_key_flag(flag_values, name)


def config_from_flags(cls, flag_values: flags.FlagValues = flags.FLAGS,
                      skip: Collection[str] = (), **overrides):
    """Builds `cls` from the parsed flags named after its fields (`overrides` win)."""
    values = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)
              if f.name not in skip and f.name not in overrides}
    return cls(**values, **overrides)


def explicit_flags(flag_values: flags.FlagValues = flags.FLAGS) -> set[str]:
    """The names of the flags given on the command line (aliases count as their target)."""
    return {name for name in flag_values if flag_values[name].present}


def define_common_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines `--seed --precision --strategy --cpu_devices --jit_compile --mixed_precision`.

    `--mixed_precision` is an alias of `--precision`. Flags that `flag_values` already has are
    left alone, so calling this twice is harmless.

    Args:
        flag_values: Where to define them; tests pass a fresh `flags.FlagValues()`.
    """
    define_config_flags(CommonConfig, flag_values,
                        enums={"precision": PRECISIONS, "strategy": STRATEGIES})
    if "mixed_precision" not in flag_values:
        flags.DEFINE_alias("mixed_precision", "precision", flag_values=flag_values)
    _make_key_flag(flag_values, "mixed_precision")


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
    return config_from_flags(CommonConfig, flag_values)


def _validate(flag_values: flags.FlagValues, name: str, minimum: int, what: str) -> None:
    flags.register_validator(
        name,
        lambda value: value is None or value >= minimum,
        message=f"Expected --{name} to be {what}.",
        flag_values=flag_values,
    )


def validate_positive(flag_values: flags.FlagValues, name: str) -> None:
    """Registers a validator requiring the numeric flag `name` to be `> 0` (or unset)."""
    _validate(flag_values, name, 1, "a positive integer (> 0)")


def validate_non_negative(flag_values: flags.FlagValues, name: str) -> None:
    """Registers a validator requiring the numeric flag `name` to be `>= 0` (or unset)."""
    _validate(flag_values, name, 0, "a non-negative integer (>= 0)")
