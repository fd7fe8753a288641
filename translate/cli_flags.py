"""Flags shared by the translate entry points, defined so that each one's `--help` lists them.

absl's `--help` shows the key flags of the main module only, and a flag belongs to the module
that defines it: a flag defined here would be missing from the `--help` of the entry point
that uses it unless it is registered as a key flag of that entry point, as every helper here
does. Defining a flag that exists already is a no-op, so that one process (a test) may set up
several entry points.
"""

import dataclasses
import sys

from absl import flags

from attn_core import flags as common_flags

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How `translate.translate`, `evaluate` and `export` decode.

    Attributes:
        beam_width: Beam width (1: greedy decoding).
        length_penalty: GNMT length penalty alpha of beam search (0: none).
        coverage_penalty: GNMT coverage penalty beta of beam search (0: none).
        batch_size: Sentences decoded together.
    """

    beam_width: int = 1
    length_penalty: float = 0.0
    coverage_penalty: float = 0.0
    batch_size: int = 64


def make_key_flags(*names: str) -> None:
    """Lists the flags `names` in the running entry point's `--help`."""
    for name in names:
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])


def define_string(name: str, default, help_text: str, **kwargs) -> None:
    """`flags.DEFINE_string`, unless `--name` exists; a key flag of the entry point either way."""
    if name not in FLAGS:
        flags.DEFINE_string(name, default, help_text, **kwargs)
    make_key_flags(name)


def define_bool(name: str, default, help_text: str, **kwargs) -> None:
    """`flags.DEFINE_bool`, unless `--name` exists; a key flag of the entry point either way."""
    if name not in FLAGS:
        flags.DEFINE_bool(name, default, help_text, **kwargs)
    make_key_flags(name)


def define_integer(name: str, default, help_text: str, **kwargs) -> None:
    """`flags.DEFINE_integer`, unless `--name` exists; a key flag of the entry point either way."""
    if name not in FLAGS:
        flags.DEFINE_integer(name, default, help_text, **kwargs)
    make_key_flags(name)


def define_enum(name: str, default, values, help_text: str) -> None:
    """`flags.DEFINE_enum`, unless `--name` exists; a key flag of the entry point either way."""
    if name not in FLAGS:
        flags.DEFINE_enum(name, default, list(values), help_text)
    make_key_flags(name)


def define_decode_flags(skip=()) -> None:
    """`--beam_width --length_penalty --coverage_penalty --batch_size` (less `skip`)."""
    common_flags.define_config_flags(DecodeConfig, skip=skip,
                                     bounds={"beam_width": (1, None), "batch_size": (1, None)})


def decode_config_from_flags(skip=()) -> DecodeConfig:
    return common_flags.config_from_flags(DecodeConfig, skip=skip)
