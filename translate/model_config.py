"""The model hyperparameters, a frozen config the library takes."""

import dataclasses

ARCHITECTURES = ("rnn", "transformer")
CELLS = ("gru", "lstm")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the translation model.

    Attributes:
        architecture: "rnn" (bidirectional RNN encoder, attention RNN decoder)
            or "transformer" (pre-LN, sinusoidal positions).
        cell: "gru" or "lstm", for the RNN architecture.
        num_layers: encoder and decoder layers.
        units: RNN units / transformer model size.
        embedding_dim: token embedding size (RNN; the transformer uses `units`).
        dropout: dropout rate.
        attention: the RNN decoder's attention (see `attention_factory`).
        heads: attention heads of the transformer.
        ff_dim: feed-forward size of the transformer.
        src_vocab_size: filled in from the source tokenizer.
        tgt_vocab_size: filled in from the target tokenizer.
    """

    architecture: str = "rnn"
    cell: str = "gru"
    num_layers: int = 1
    units: int = 256
    embedding_dim: int = 128
    dropout: float = 0.1
    attention: str = "luong_general"
    heads: int = 4
    ff_dim: int = 1024
    src_vocab_size: int = 0
    tgt_vocab_size: int = 0

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Expected `architecture` in {ARCHITECTURES}. "
                f"Received: architecture={self.architecture!r}"
            )
        if self.cell not in CELLS:
            raise ValueError(f"Expected `cell` in {CELLS}. Received: cell={self.cell!r}")
        for name in ("num_layers", "units", "embedding_dim", "heads", "ff_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Expected `{name}` to be a positive integer. "
                                 f"Received: {name}={value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Expected `dropout` in [0, 1). Received: dropout={self.dropout}")
        if self.architecture == "transformer" and self.units % self.heads:
            raise ValueError(f"Expected `units` divisible by `heads`. "
                             f"Received: units={self.units}, heads={self.heads}")
