"""`DecodeConfig`: how the translate tools decode, and its flags."""

import dataclasses

from attn_core import flags as common_flags


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


def define_decode_flags(skip=()) -> None:
    """`--beam_width --length_penalty --coverage_penalty --batch_size` (less `skip`)."""
    common_flags.define_config_flags(DecodeConfig, skip=skip,
                                     bounds={"beam_width": (1, None), "batch_size": (1, None)})


def decode_config_from_flags(skip=()) -> DecodeConfig:
    return common_flags.config_from_flags(DecodeConfig, skip=skip)
