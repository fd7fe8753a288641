"""The model hyperparameters, a frozen config the library takes.

`translate.train` makes one flag per field (`attn_core.flags.define_config_flags`), with the
field's line of the `Attributes:` section below as its help text.
"""

import dataclasses

ARCHITECTURES = ("rnn", "transformer")
CELLS = ("gru", "lstm")
DEFAULT_LAYERS = {"rnn": 1, "transformer": 2}
# The values of fields added since a model directory was saved: what its model was built with.
LEGACY_DEFAULTS = {"tie_embeddings": False}
# Filled in from the tokenizers, not from flags.
VOCAB_FIELDS = ("src_vocab_size", "tgt_vocab_size")
# The fields that only one architecture reads: given for the other, they would be ignored.
ARCHITECTURE_FIELDS = {"rnn": ("cell", "embedding_dim", "attention"),
                       "transformer": ("heads", "ff_dim", "tie_embeddings")}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the translation model.

    Attributes:
        architecture: Model family: transformer (pre-layer-norm, sinusoidal positions; the
            default: it learns fastest on real corpora) or rnn (bidirectional RNN encoder,
            attention RNN decoder with input feeding).
        cell: Recurrent cell of the rnn architecture: gru or lstm.
        num_layers: Encoder and decoder layers (each); 0: 2 for the transformer, 1 for the
            rnn.
        units: Hidden size: the RNN's units, or the transformer's model width.
        embedding_dim: Token embedding size of the rnn architecture (the transformer's
            embeddings are --units wide).
        dropout: Dropout rate, in [0, 1) (translate.train's default is 0 for a training
            file of under 40,000 pairs).
        attention: Attention of the rnn decoder over the encoder states (see
            translate/attention_factory.py).
        heads: Attention heads of the transformer; --units must be divisible by it.
        ff_dim: Feed-forward size of the transformer's layers.
        tie_embeddings: The transformer's output projection is its target embedding
            (transposed), as in Vaswani et al. (translate.train's default for a training
            file of under 40,000 pairs).
        src_vocab_size: Source vocabulary size, filled in from the source tokenizer.
        tgt_vocab_size: Target vocabulary size, filled in from the target tokenizer.
    """

    architecture: str = "transformer"
    cell: str = "gru"
    num_layers: int = 0
    units: int = 256
    embedding_dim: int = 128
    dropout: float = 0.1
    attention: str = "luong_general"
    heads: int = 4
    ff_dim: int = 1024
    tie_embeddings: bool = False
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
        if self.num_layers == 0:  # frozen: the resolved value is what is saved
            object.__setattr__(self, "num_layers", DEFAULT_LAYERS[self.architecture])
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

    @property
    def attention_dims(self):
        """The dims E of the model's decoding alignments [R, *E, S]: (decoder layers, heads)
        for the transformer, none for the rnn's one attention."""
        if self.architecture == "transformer":
            return (self.num_layers, self.heads)
        return ()

def upgrade_saved(saved):
    """A saved model config (a dict, or None) with the fields added since it was written set
    to the values its model was built with (`LEGACY_DEFAULTS`)."""
    if saved is None:
        return None
    return LEGACY_DEFAULTS | saved
