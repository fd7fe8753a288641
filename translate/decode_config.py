"""`DecodeConfig`: how the translate tools decode, and its flags."""

import dataclasses

from attn_core import flags as common_flags
from attn_core.errors import UserError

# What translate.export does not offer: its graph decodes by argmax or beam search, and
# returns the model's tokens.
SAMPLING_FIELDS = ("sampling", "sampling_topk", "sampling_topp", "sampling_temperature", "seed")
EXPORT_SKIP = ("batch_size", "replace_unknown", *SAMPLING_FIELDS)


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How `translate.translate`, `evaluate` and `export` decode.

    Attributes:
        beam_width: Beam width (1: greedy decoding; random sampling decodes one token at a
            time, so the --sampling* flags need it at 1, and make it the default).
        length_penalty: GNMT length penalty alpha of beam search (0: none).
        coverage_penalty: GNMT coverage penalty beta of beam search (0: none).
        batch_size: Sentences decoded together.
        sampling: Sample each token from the model's distribution instead of taking the
            most likely one (back-translation); implied by the other --sampling_* flags.
        sampling_topk: Sample among the k most likely tokens only (0: all).
        sampling_topp: Sample among the most likely tokens whose probabilities add up to
            this, in (0, 1] (1: all).
        sampling_temperature: Divide the log-probabilities by this before sampling (> 0;
            below 1 is closer to greedy).
        seed: Seed of the sampling: the same seed and input give the same output, whatever
            the --batch_size.
        replace_unknown: Replace each <unk> of the output by the source word it attends to
            most (word-level models only).
    """

    beam_width: int = 5
    length_penalty: float = 1.0
    coverage_penalty: float = 0.0
    batch_size: int = 64
    sampling: bool = False
    sampling_topk: int = 0
    sampling_topp: float = 1.0
    sampling_temperature: float = 1.0
    seed: int = 0
    replace_unknown: bool = False

    def __post_init__(self):
        if not 0.0 < self.sampling_topp <= 1.0:
            raise UserError("Expected --sampling_topp in (0, 1]. Received: "
                            f"--sampling_topp={self.sampling_topp}")
        if not self.sampling_temperature > 0.0:
            raise UserError("Expected --sampling_temperature > 0. Received: "
                            f"--sampling_temperature={self.sampling_temperature}")
        if self.sampling_topk < 0:
            raise UserError("Expected --sampling_topk >= 0. Received: "
                            f"--sampling_topk={self.sampling_topk}")
        if self.samples and self.beam_width != 1:
            raise UserError(f"random sampling ({self._sampling_flags()}) needs "
                            f"--beam_width=1. Received: --beam_width={self.beam_width}")

    @property
    def samples(self) -> bool:
        """Whether the tokens are sampled (`sampling`, or any sampling_* setting)."""
        return (self.sampling or self.sampling_topk > 0 or self.sampling_topp < 1.0
                or self.sampling_temperature != 1.0)

    def _sampling_flags(self):
        given = [f"--{name}={getattr(self, name)}"
                 for name, default in (("sampling_topk", 0), ("sampling_topp", 1.0),
                                       ("sampling_temperature", 1.0))
                 if getattr(self, name) != default]
        return " ".join(given) or "--sampling"

    def sampler(self):
        """The `translate.sampling.Sampler` of these settings, or None when not sampling."""
        if not self.samples:
            return None
        from translate.sampling import Sampler

        return Sampler(topk=self.sampling_topk, topp=self.sampling_topp,
                       temperature=self.sampling_temperature, seed=self.seed)


def define_decode_flags(skip=()) -> None:
    """One flag per `DecodeConfig` field (less `skip`)."""
    common_flags.define_config_flags(DecodeConfig, skip=skip,
                                     bounds={"beam_width": (1, None), "batch_size": (1, None),
                                             "sampling_topp": (0.0, 1.0)})


def decode_config_from_flags(skip=()) -> DecodeConfig:
    """The `DecodeConfig` of the parsed flags.

    Raises:
        UserError: on settings that exclude each other (sampling with beam search) or are
            out of range.
    """
    if "beam_width" not in common_flags.explicit_flags():
        sampling = common_flags.config_from_flags(DecodeConfig, skip=skip, beam_width=1)
        if sampling.samples:
            return sampling
    return common_flags.config_from_flags(DecodeConfig, skip=skip)
