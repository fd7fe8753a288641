"""The RNN encoder-decoder: a bidirectional encoder and an attention decoder
built on `attn_core.AttentionRNNCell` with input feeding."""

import keras
from keras import ops

import attn_core
from translate.attention_factory import make_attention
from translate.seq2seq_model import Seq2SeqModel


def _cell(kind, units, dropout):
    if kind == "lstm":
        return keras.layers.LSTMCell(units, dropout=dropout)
    return keras.layers.GRUCell(units, dropout=dropout)


@keras.saving.register_keras_serializable(package="translate")
class RNNSeq2Seq(Seq2SeqModel):
    """Bidirectional GRU/LSTM encoder, attention RNN decoder.

    - Encoder: embedding (mask_zero), `num_layers` bidirectional RNNs, and a
      projection of the memory to `units` (so every score, dot included,
      compares vectors of the same size).
    - Bridge: the decoder's initial hidden states are tanh(W · masked mean of
      the memory).
    - Decoder: `AttentionRNN` over `AttentionRNNCell(cell, attention,
      attention_layer_size=units)`, so the previous attentional vector is fed
      to the next step (Luong's input feeding).

    Letters: B batch, S source length, T target length, U units, V vocab.

    Call arguments:
        inputs: dict with "source" int32 [B, S] and "decoder_in" int32 [B, T]
            (0 is padding).

    Returns:
        float32 logits [B, T, V].
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = config
        self.src_embedding = keras.layers.Embedding(
            c.src_vocab_size, c.embedding_dim, mask_zero=True, name="src_embedding"
        )
        rnn = keras.layers.LSTM if c.cell == "lstm" else keras.layers.GRU
        self.encoder_layers = [
            keras.layers.Bidirectional(
                rnn(c.units, return_sequences=True, dropout=c.dropout), name=f"encoder_{i}"
            )
            for i in range(c.num_layers)
        ]
        self.memory_projection = keras.layers.Dense(c.units, use_bias=False, name="memory_proj")
        self.bridge = keras.layers.Dense(c.units, activation="tanh", name="bridge")
        self.tgt_embedding = keras.layers.Embedding(
            c.tgt_vocab_size, c.embedding_dim, name="tgt_embedding"
        )
        cells = [_cell(c.cell, c.units, c.dropout) for _ in range(c.num_layers)]
        cell = cells[0] if len(cells) == 1 else keras.layers.StackedRNNCells(cells)
        # The decoder also returns its alignments [B, T, S] (for guided alignment).
        self.cell = attn_core.AttentionRNNCell(
            cell, make_attention(c.attention, c.units), attention_layer_size=c.units,
            alignment_history=True, name="attention_cell",
        )
        self.decoder = attn_core.AttentionRNN(self.cell, name="decoder")
        self.output_layer = keras.layers.Dense(c.tgt_vocab_size, name="logits")

    def encode(self, source, training=False):
        """source [B, S] -> (memory [B, S, U], mask bool [B, S], decoder states)."""
        mask = ops.not_equal(source, 0)  # [B, S]
        x = self.src_embedding(source)
        for layer in self.encoder_layers:
            x = layer(x, mask=mask, training=training)
        memory = self.memory_projection(x)  # [B, S, U]
        weights = ops.cast(mask, memory.dtype)[..., None]
        mean = ops.sum(memory * weights, 1) / ops.maximum(ops.sum(weights, 1), 1.0)
        hidden = self.bridge(mean)  # [B, U]
        return memory, mask, self._initial_states(hidden)

    def _initial_states(self, hidden):
        """The cell's zero states with every hidden state h replaced by `hidden`."""
        c = self.config
        batch = ops.shape(hidden)[0]
        zeros = ops.zeros((batch, c.units), hidden.dtype)
        per_layer = [hidden, zeros] if c.cell == "lstm" else [hidden]
        cell_states = per_layer * c.num_layers
        states = cell_states + [ops.zeros((batch, c.units), hidden.dtype)]  # a_0 = 0
        # Any further state of the cell (the step counter of local-m) starts at zero.
        extra = self.cell.state_size[len(states):]
        return states + [ops.zeros((batch, size), hidden.dtype) for size in extra]

    attention_dims = ()  # one attention: decoding alignments [R, S]

    @staticmethod
    def head_mean(alignments):
        """The one attention is its own head mean: `alignments` [..., S] as they are."""
        return alignments

    def call_with_attention(self, inputs, training=False):
        """Like `call`, and the decoder's attention: (logits float32 [B, T, V], alignments
        float32 [B, T, S])."""
        memory, mask, states = self.encode(inputs["source"], training=training)
        embedded = self.tgt_embedding(inputs["decoder_in"])  # [B, T, E]
        outputs, alignments = self.decoder(embedded, constants=[memory, mask],
                                           initial_state=states, training=training)  # [B, T, U]
        logits = ops.cast(self.output_layer(outputs), "float32")  # [B, T, V]
        return logits, ops.cast(alignments, "float32")

    def call(self, inputs, training=False):
        return self.call_with_attention(inputs, training=training)[0]

    def decoding_step(self, memory, mask, cache=True):
        """Sets the (possibly beam-tiled) memory and returns the step function
        `(tokens [N], states, t) -> (logits [N, V], states, alignments [N, S])`.

        `cache` is accepted for the Transformer's interface and ignored: the RNN's state is
        its own cache."""
        del cache
        self.cell.setup_memory(memory, mask)

        def step(tokens, states, t):
            del t
            output, states, alignments = self.cell(
                self.tgt_embedding(tokens), list(states), return_alignments=True
            )
            return ops.cast(self.output_layer(output), "float32"), states, alignments

        return step
