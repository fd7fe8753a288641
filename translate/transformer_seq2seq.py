"""A pre-LN Transformer encoder-decoder on `attn_core.MultiHeadAttention`."""

import keras
import numpy as np
from keras import ops

import attn_core
from translate.seq2seq_model import Seq2SeqModel


def sinusoidal_positions(length, depth):
    """The sinusoidal position table of Vaswani et al., float32 [length, depth]."""
    positions = np.arange(length)[:, None]
    rates = 1.0 / np.power(10000.0, (2 * (np.arange(depth) // 2)) / depth)
    angles = positions * rates[None, :]
    table = np.zeros((length, depth), "float32")
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


class _FeedForward(keras.layers.Layer):
    def __init__(self, units, ff_dim, dropout, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(ff_dim, activation="relu", name="inner")
        self.outer = keras.layers.Dense(units, name="outer")
        self.dropout = keras.layers.Dropout(dropout)

    def call(self, x, training=False):
        return self.outer(self.dropout(self.inner(x), training=training))


class _Block(keras.layers.Layer):
    """One pre-LN block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, config, cross, **kwargs):
        super().__init__(**kwargs)
        c = config
        key_dim = c.units // c.heads
        self.self_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="self_norm")
        self.self_attention = attn_core.MultiHeadAttention(
            c.heads, key_dim, dropout=c.dropout, name="self_attention"
        )
        self.cross_norm = self.cross_attention = None
        if cross:
            self.cross_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="cross_norm")
            self.cross_attention = attn_core.MultiHeadAttention(
                c.heads, key_dim, dropout=c.dropout, name="cross_attention"
            )
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ff_norm")
        self.ff = _FeedForward(c.units, c.ff_dim, c.dropout, name="ff")
        self.dropout = keras.layers.Dropout(c.dropout)

    def call(self, x, mask, memory=None, memory_mask=None, causal=False, training=False):
        """x [B, T, D]; mask bool [B, T]; memory [B, S, D]; memory_mask bool [B, S].

        Returns x [B, T, D] and the cross-attention weights [B, N, T, S] (or None).
        """
        h = self.self_norm(x)
        h = self.self_attention(h, h, query_mask=mask, value_mask=mask, use_causal_mask=causal,
                                training=training)
        x = x + self.dropout(h, training=training)
        weights = None
        if self.cross_attention is not None:
            h = self.cross_norm(x)
            h, weights = self.cross_attention(
                h, memory, query_mask=mask, value_mask=memory_mask,
                return_attention_scores=True, training=training,
            )
            x = x + self.dropout(h, training=training)
        x = x + self.dropout(self.ff(self.ff_norm(x), training=training), training=training)
        return x, weights


@keras.saving.register_keras_serializable(package="translate")
class TransformerSeq2Seq(Seq2SeqModel):
    """Pre-LN Transformer (Xiong et al. 2020) with sinusoidal positions.

    Letters: B batch, S source length, T target length, D = units, L layers,
    N heads, V vocab.

    Its decoding alignments are the cross-attention of every decoder layer
    and head ([R, L, N, S] a step, `attention_dims` = (L, N)); its head mean
    (`head_mean`) is that of the last layer.

    Call arguments:
        inputs: dict with "source" int32 [B, S], "decoder_in" int32 [B, T].

    Returns:
        float32 logits [B, T, V].
    """

    max_positions = 512

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = config
        self.src_embedding = keras.layers.Embedding(c.src_vocab_size, c.units, name="src_embedding")
        self.tgt_embedding = keras.layers.Embedding(c.tgt_vocab_size, c.units, name="tgt_embedding")
        self.positions = ops.convert_to_tensor(sinusoidal_positions(self.max_positions, c.units))
        self.encoder_blocks = [_Block(c, cross=False, name=f"encoder_{i}")
                               for i in range(c.num_layers)]
        self.decoder_blocks = [_Block(c, cross=True, name=f"decoder_{i}")
                               for i in range(c.num_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        self.input_dropout = keras.layers.Dropout(c.dropout)
        self.output_layer = keras.layers.Dense(c.tgt_vocab_size, name="logits")

    def _embed(self, embedding, tokens, training):
        length = ops.shape(tokens)[1]
        scale = ops.cast(ops.sqrt(float(self.config.units)), embedding.compute_dtype)
        x = embedding(tokens) * scale
        x = x + ops.cast(self.positions[:length], x.dtype)[None]
        return self.input_dropout(x, training=training)

    def encode(self, source, training=False):
        """source [B, S] -> (memory [B, S, D], mask bool [B, S], None)."""
        mask = ops.not_equal(source, 0)
        x = self._embed(self.src_embedding, source, training)
        for block in self.encoder_blocks:
            x, _ = block(x, mask, training=training)
        return self.encoder_norm(x), mask, None

    @property
    def attention_dims(self):
        """E of the decoding alignments: (L, N)."""
        return self.config.attention_dims

    @staticmethod
    def head_mean(alignments):
        """Alignments [..., L, N, S] -> the last layer's head mean [..., S]."""
        return ops.mean(alignments[..., -1, :, :], axis=-2)

    def _decode_hidden(self, decoder_in, memory, memory_mask, training=False):
        """-> (normed decoder states [B, T, D], the cross-attention weights of every layer:
        a list of L [B, N, T, S], in the compute dtype)."""
        mask = ops.not_equal(decoder_in, 0)
        # Position 0 holds BOS (1), so the mask is True there even for an all-pad row.
        x = self._embed(self.tgt_embedding, decoder_in, training)
        layer_weights = []
        for block in self.decoder_blocks:
            x, weights = block(x, mask, memory, memory_mask, causal=True, training=training)
            layer_weights.append(weights)
        return self.decoder_norm(x), layer_weights

    def decode(self, decoder_in, memory, memory_mask, training=False):
        """-> (logits float32 [B, T, V], the last layer's cross-attention [B, T, S] averaged
        over heads, float32)."""
        hidden, layer_weights = self._decode_hidden(decoder_in, memory, memory_mask, training)
        attention = ops.mean(ops.cast(layer_weights[-1], "float32"), axis=1)
        return ops.cast(self.output_layer(hidden), "float32"), attention

    def call_with_attention(self, inputs, training=False):
        """Like `call`, and the attention guided alignment supervises: (logits float32
        [B, T, V], the last layer's head mean [B, T, S] float32)."""
        memory, mask, _ = self.encode(inputs["source"], training=training)
        return self.decode(inputs["decoder_in"], memory, mask, training=training)

    def call(self, inputs, training=False):
        return self.call_with_attention(inputs, training=training)[0]

    def initial_decoding_state(self, batch_size, max_length):
        """The step state: the decoded prefix, int32 [B, T_max] (0 = not yet decoded)."""
        return [ops.zeros((batch_size, max_length), "int32")]

    def decoding_step(self, memory, mask):
        """The step function for `translate.decoding`: it writes token t into
        the prefix and re-runs the decoder over it (O(T²), no cache), but
        projects only position t onto the vocabulary."""

        def step(tokens, states, t):
            prefix = states[0]  # [N, T_max]
            t_max = ops.shape(prefix)[1]
            here = ops.equal(ops.arange(t_max)[None, :], t)  # [1, T_max]
            prefix = ops.where(here, ops.cast(tokens, "int32")[:, None], prefix)
            hidden, layer_weights = self._decode_hidden(prefix, memory, mask)
            picked = ops.cast(here, "float32")[..., None]  # [1, T_max, 1]
            last = ops.sum(ops.cast(hidden, "float32") * picked, axis=1)  # [N, D]
            logits = ops.cast(self.output_layer(ops.cast(last, hidden.dtype)), "float32")
            step_weights = [ops.sum(ops.cast(w, "float32") * picked[:, None], axis=2)
                            for w in layer_weights]  # L x [N, heads, S]
            return logits, [prefix], self._step_alignments(step_weights)

        return step

    def _step_alignments(self, layer_weights):
        """The alignments a decoding step returns, from the cross-attention weights of that
        step in every layer (a list of L [R, N, S]): float32 [R, L, N, S]."""
        return ops.stack([ops.cast(w, "float32") for w in layer_weights], axis=1)
