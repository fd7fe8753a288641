"""A recurrent layer that runs an `AttentionRNNCell` over a sequence, with
the memory passed as `constants`."""

import keras
from keras import ops

from attn_core import masking
from attn_core.attention_rnn_cell import AttentionRNNCell


@keras.saving.register_keras_serializable(package="attn_core")
class AttentionRNN(keras.layers.Layer):
    """Runs an `AttentionRNNCell` over a decoder sequence.

    Keras 3's `keras.layers.RNN` dropped the `constants` argument that
    Keras 2 had; this layer takes it, so an attention decoder can live in a
    functional model: `AttentionRNN(cell)(decoder_inputs, constants=memory)`.

    Letters: B batch, T decoder steps, S memory length, Dm memory size.

    Example:

    >>> cell = AttentionRNNCell(keras.layers.GRUCell(32), BahdanauAttention(16),
    ...                         attention_layer_size=32, alignment_history=True)
    >>> outputs, alignments = AttentionRNN(cell)(
    ...     keras.ops.ones((2, 5, 8)), constants=keras.ops.ones((2, 7, 16)))
    >>> outputs.shape, alignments.shape
    ((2, 5, 32), (2, 5, 7))

    Args:
        cell: an `AttentionRNNCell`.
        return_sequences: return every step's output [B, T, .] (default) or
            the last one [B, .].
        return_state: also return the final states.
        go_backwards, unroll, zero_output_for_mask: as in `keras.layers.RNN`.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        sequences: [B, T, Din].
        constants: the memory [B, S, Dm], or `[memory, memory_mask]` with a
            bool mask [B, S]. Without an explicit mask, Keras' implicit mask
            of the memory is used.
        initial_state: optional list of states (see `AttentionRNNCell`).
        mask: optional bool [B, T]; defaults to the implicit mask of
            `sequences`.
        training: Python bool.

    Returns:
        The outputs; then, when `cell.alignment_history`, the alignments
        [B, T, S] (or [B, S] without `return_sequences`); then, with
        `return_state`, the final states.
    """

    def __init__(self, cell, return_sequences=True, return_state=False, go_backwards=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cell, AttentionRNNCell):
            raise ValueError(f"Expected an AttentionRNNCell. Received: cell={cell}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.rnn = None

    @staticmethod
    def _split_constants(constants):
        if isinstance(constants, (list, tuple)):
            if len(constants) not in (1, 2):
                raise ValueError(
                    "Expected `constants` to be memory or [memory, memory_mask]. "
                    f"Received: constants of length {len(constants)}"
                )
            return constants[0], (constants[1] if len(constants) == 2 else None)
        return constants, None

    def build(self, sequences_shape, constants_shape=None, initial_state_shape=None):
        if constants_shape is None:
            raise ValueError("Expected the memory as `constants`. Received: constants=None")
        memory_shape = constants_shape
        if not all(d is None or isinstance(d, int) for d in memory_shape):
            memory_shape = memory_shape[0]  # [memory_shape, memory_mask_shape]
        self.cell.build_for_memory(
            (sequences_shape[0], sequences_shape[-1]), tuple(memory_shape)
        )
        self._make_rnn()

    def _make_rnn(self):
        if self.rnn is None:
            self.rnn = keras.layers.RNN(
                self.cell, return_sequences=self.return_sequences, return_state=True,
                go_backwards=self.go_backwards, unroll=self.unroll,
                zero_output_for_mask=self.zero_output_for_mask, name="rnn",
                dtype=self.dtype_policy,
            )

    def call(self, sequences, constants=None, initial_state=None, mask=None, training=None):
        if constants is None:
            raise ValueError("Expected the memory as `constants`. Received: constants=None")
        memory, memory_mask = self._split_constants(constants)
        if mask is None:
            mask = masking.get_keras_mask(sequences)
        self._make_rnn()
        self.cell.setup_memory(memory, memory_mask)
        self.cell._emit_alignments = self.cell.alignment_history
        if training:
            self._config_dropout_masks(sequences, initial_state)
        try:
            outputs, *states = self.rnn(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        finally:
            self.cell._emit_alignments = False
            self.cell.reset_memory()
            self.rnn._maybe_reset_dropout_masks(self.cell.cell)
        results = [outputs]
        if self.cell.alignment_history:
            size = self.cell.output_size
            lead = tuple(ops.shape(outputs)[:-1])
            results = [
                ops.reshape(outputs[..., :size], lead + (size,)),  # keeps the static size
                outputs[..., size:],  # [B, T, S] or [B, S]
            ]
        if self.return_state:
            results += states
        return results[0] if len(results) == 1 else tuple(results)

    def _config_dropout_masks(self, sequences, initial_state):
        """Creates the wrapped cell's dropout masks before the loop, as `keras.layers.RNN`
        does for the cells it sees: a mask made inside the loop would leak out of it.
        The cell's step input is [x_t; a_{t-1}], so the masks get that width."""
        batch = ops.shape(sequences)[0]
        states = initial_state or self.cell.get_initial_state(batch_size=batch)
        n_cell = len(self.cell._cell_state_sizes)
        cell_states = keras.tree.pack_sequence_as(
            self.cell._cell_state_structure, list(keras.tree.flatten(states))[:n_cell]
        )
        step_input = ops.zeros(
            (batch, sequences.shape[-1] + self.cell.attention_size), sequences.dtype
        )
        self.rnn._maybe_config_dropout_masks(self.cell.cell, step_input, cell_states)

    def compute_mask(self, sequences, previous_mask=None):
        if not self.return_sequences:
            return None
        if self.cell.alignment_history or self.return_state:
            return None
        return previous_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)
