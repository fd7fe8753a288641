"""An RNN cell wrapped with attention over a memory: the successor to
`tfa.seq2seq.AttentionWrapper`."""

import keras
from keras import ops

from attn_core import masking
from attn_core.base_attention import BaseAttention
from attn_core.local_attention import LocalAttention


def _as_list(x):
    """A flat list of the leaves of `x` (a cell's possibly nested states or state sizes)."""
    return list(keras.tree.flatten(x))


@keras.saving.register_keras_serializable(package="attn_core")
class AttentionRNNCell(keras.layers.Layer):
    """Wraps a Keras RNN cell with attention over a memory (encoder outputs).

    One step, with Luong's input feeding:

        x'_t      = [x_t; a_{t-1}]                   (input feeding)
        h_t, s_t  = cell(x'_t, s_{t-1})
        c_t, α_t  = attention(h_t, memory)           (context, alignments)
        a_t       = tanh(W_c [h_t; c_t])  if attention_layer_size else c_t
        output    = a_t if output_attention else h_t

    The memory is given either by `setup_memory(memory, memory_mask)`, for
    step-by-step decoding in eager code or inside one `tf.function`, or by
    `AttentionRNN(cell)(inputs, constants=memory)`, which also works in
    functional models. (Keras 3's own `keras.layers.RNN` no longer takes
    `constants`; `AttentionRNN` is the layer that does.) The keys are
    projected once per memory, not at every step.

    Letters: B batch, S memory length, Dm memory size, A attentional size,
    T decoder steps.

    Example:

    >>> cell = AttentionRNNCell(keras.layers.GRUCell(32), LuongAttention("general"),
    ...                         attention_layer_size=32)
    >>> memory = keras.ops.ones((2, 7, 16))
    >>> cell.setup_memory(memory)
    >>> states = cell.get_initial_state(batch_size=2)
    >>> output, states, alignments = cell(
    ...     keras.ops.ones((2, 8)), states, return_alignments=True)
    >>> output.shape, alignments.shape
    ((2, 32), (2, 7))

    Args:
        cell: a Keras RNN cell, e.g. `GRUCell` or `LSTMCell`.
        attention: a `BaseAttention` layer (Bahdanau, Luong, local).
        attention_layer_size: A, the size of the attentional vector
            tanh(W_c [h; c]); None uses the context itself (A = Dm).
        output_attention: bool; output the attentional vector (Luong) or
            the cell output (Bahdanau).
        alignment_history: bool; `AttentionRNN` then also returns the
            alignments of every step, [B, T, S].
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: [B, Din], one step.
        states: the list from `get_initial_state` or the previous step:
            the cell's states, then a_{t-1} [B, A] (then the step index
            [B, 1] for monotonic local attention).
        training: Python bool.
        return_alignments: also return α_t [B, S].

    Returns:
        (output [B, A or cell units], new states) and, with
        `return_alignments`, α_t [B, S].

    Raises:
        ValueError: for a cell without `state_size`, an attention that is not
            a `BaseAttention`, `attention_layer_size <= 0`, or a call before
            the memory is known.
    """

    def __init__(self, cell, attention, attention_layer_size=None, output_attention=True,
                 alignment_history=False, **kwargs):
        super().__init__(**kwargs)
        if "state_size" not in dir(cell) or "call" not in dir(cell):
            raise ValueError(
                f"Expected a Keras RNN cell with `state_size` and `call`. Received: cell={cell}"
            )
        if not isinstance(attention, BaseAttention):
            raise ValueError(
                "Expected `attention` to be an attn_core attention layer (BahdanauAttention, "
                f"LuongAttention, LocalAttention). Received: attention={attention}"
            )
        if attention_layer_size is not None and (
            isinstance(attention_layer_size, bool)
            or not isinstance(attention_layer_size, int)
            or attention_layer_size <= 0
        ):
            raise ValueError(
                "Expected `attention_layer_size` to be a positive integer or None. "
                f"Received: attention_layer_size={attention_layer_size}"
            )
        self.cell = cell
        self.attention = attention
        self.attention_layer_size = attention_layer_size
        self.output_attention = bool(output_attention)
        self.alignment_history = bool(alignment_history)
        # Stacked cells have nested state sizes ([[h, c], [h, c]] for LSTMs); the wrapper keeps
        # them flat and packs them back into the cell's structure at every step.
        self._cell_state_structure = cell.state_size
        self._cell_state_sizes = _as_list(cell.state_size)
        self._uses_step = isinstance(attention, LocalAttention) and attention.mode == "monotonic"
        self._memory_depth = None
        self._memory = self._memory_mask = self._processed_key = None
        self._emit_alignments = False
        self.attention_layer = None
        if attention_layer_size is not None:
            self.attention_layer = keras.layers.Dense(
                attention_layer_size, activation="tanh", use_bias=False,
                name="attention_layer", dtype=self.dtype_policy,
            )

    # ---- sizes ----------------------------------------------------------------

    @property
    def attention_size(self):
        """A: the size of the attentional vector a_t."""
        if self.attention_layer_size is not None:
            return self.attention_layer_size
        if self._memory_depth is None:
            raise ValueError(
                "Expected the memory before the state size is known: call setup_memory(), "
                "use AttentionRNN, or pass attention_layer_size. Received: memory=None"
            )
        return self._memory_depth

    @property
    def state_size(self):
        sizes = self._cell_state_sizes + [self.attention_size]
        return sizes + [1] if self._uses_step else sizes

    @property
    def output_size(self):
        if self.output_attention:
            return self.attention_size
        return getattr(self.cell, "output_size", self._cell_state_sizes[0])

    def _cell_output_size(self):
        size = getattr(self.cell, "output_size", None)
        return size if isinstance(size, int) else self._cell_state_sizes[0]

    # ---- memory ---------------------------------------------------------------

    def build_for_memory(self, input_shape, memory_shape):
        """Builds the cell, the attention and W_c for step inputs [B, Din] and a
        memory [B, S, Dm]."""
        self._memory_depth = memory_shape[-1]
        batch = input_shape[0]
        if not self.attention.built:
            self.attention.build((batch, self._cell_output_size()), tuple(memory_shape))
        if not self.cell.built:
            self.cell.build((batch, input_shape[-1] + self.attention_size))
        if self.attention_layer is not None and not self.attention_layer.built:
            self.attention_layer.build((batch, self._cell_output_size() + self._memory_depth))
        self.built = True

    def setup_memory(self, memory, memory_mask=None):
        """Sets the memory the next steps attend to.

        Args:
            memory: [B, S, Dm], e.g. the encoder outputs.
            memory_mask: optional bool [B, S], True for real positions;
                defaults to Keras' implicit mask of `memory`.
        """
        if len(memory.shape) != 3:
            raise ValueError(
                f"Expected `memory` of rank 3 [B, S, Dm]. Received: memory.shape={memory.shape}"
            )
        if memory_mask is None:
            memory_mask = masking.get_keras_mask(memory)
        self._memory_depth = memory.shape[-1]
        if not self.attention.built:
            self.attention.build((memory.shape[0], self._cell_output_size()), memory.shape)
        self._memory = memory
        self._memory_mask = masking.as_bool_mask(memory_mask)
        self._processed_key = self.attention._process_key(memory)  # [B, S, .]

    def reset_memory(self):
        self._memory = self._memory_mask = self._processed_key = None

    def build(self, input_shape):
        if self._memory_depth is None:
            raise ValueError(
                "Expected the memory before the first step: call setup_memory(memory) or use "
                "AttentionRNN(cell)(inputs, constants=memory). Received: memory=None"
            )
        self.build_for_memory(input_shape, (input_shape[0], None, self._memory_depth))

    def get_initial_state(self, batch_size=None):
        if hasattr(self.cell, "get_initial_state"):
            cell_states = _as_list(self.cell.get_initial_state(batch_size=batch_size))
        else:
            cell_states = [ops.zeros((batch_size, n), self.compute_dtype)
                           for n in self._cell_state_sizes]
        states = cell_states + [ops.zeros((batch_size, self.attention_size), self.compute_dtype)]
        if self._uses_step:
            states.append(ops.zeros((batch_size, 1), self.compute_dtype))
        return states

    # ---- one step -------------------------------------------------------------

    def call(self, inputs, states, training=None, return_alignments=False):
        if self._memory is None:
            raise ValueError(
                "Expected the memory before the first step: call setup_memory(memory) or use "
                "AttentionRNN(cell)(inputs, constants=memory). Received: memory=None"
            )
        states = _as_list(states)
        n_cell = len(self._cell_state_sizes)
        cell_states, previous = states[:n_cell], states[n_cell]  # a_{t-1}: [B, A]
        cell_inputs = ops.concatenate([inputs, ops.cast(previous, inputs.dtype)], axis=-1)
        if keras.tree.is_nested(self._cell_state_structure):
            cell_states = keras.tree.pack_sequence_as(self._cell_state_structure, cell_states)
        cell_output, new_cell_states = self.cell(cell_inputs, cell_states, training=training)
        positions = ops.cast(states[n_cell + 1][:, 0], "float32") if self._uses_step else None
        context, alignments = self.attention.attend(
            cell_output, self._memory, self._processed_key, key_valid=self._memory_mask,
            training=training, query_positions=positions,
        )  # [B, Dm], [B, S]
        if self.attention_layer is not None:
            attentional = self.attention_layer(ops.concatenate([cell_output, context], axis=-1))
        else:
            attentional = context  # [B, A]
        output = attentional if self.output_attention else cell_output
        new_states = _as_list(new_cell_states) + [attentional]
        if self._uses_step:
            new_states.append(states[n_cell + 1] + 1)
        if self._emit_alignments:
            output = ops.concatenate([output, ops.cast(alignments, output.dtype)], axis=-1)
        if return_alignments:
            return output, new_states, alignments
        return output, new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            attention=keras.saving.serialize_keras_object(self.attention),
            attention_layer_size=self.attention_layer_size,
            output_attention=self.output_attention,
            alignment_history=self.alignment_history,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        config["attention"] = keras.saving.deserialize_keras_object(config["attention"])
        return cls(**config)
