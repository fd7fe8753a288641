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


class _TiedOutput(keras.layers.Layer):
    """The output projection through the target embedding: logits = x @ E^T + b.

    The embedding matrix is read through a function, not held, so that Keras tracks the
    variable once (under the embedding layer) and the checkpoint holds it once.
    """

    def __init__(self, embedding_matrix, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self._embedding_matrix = embedding_matrix
        self.vocab_size = vocab_size

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, x):
        """x [..., D] -> logits [..., V] in the compute dtype."""
        matrix = ops.cast(self._embedding_matrix(), self.compute_dtype)  # [V, D]
        return ops.matmul(x, ops.transpose(matrix)) + ops.cast(self.bias, self.compute_dtype)


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

    def decode_step(self, x, query_mask, self_cache, t, self_mask, memory_cache, memory_mask):
        """One decoder position with key/value caches (inference: no dropout).

        Args:
            x: [R, 1, D], the input at position t.
            query_mask: bool [R, 1], False where the token at t is padding.
            self_cache: [R, 2, T_max, N, K], the self-attention keys and values of the
                positions before t.
            t: int32 scalar, the position.
            self_mask: bool [R, T_max], False on the padding of the prefix (t included).
            memory_cache: [R, 2, S, N, K], the cross-attention keys and values of the memory.
            memory_mask: bool [R, S].

        Returns:
            x [R, 1, D], the self-attention cache with position t written, and the
            cross-attention weights [R, N, 1, S].
        """
        h = self.self_norm(x)
        h, self_cache = self.self_attention(h, query_mask=query_mask, value_mask=self_mask,
                                            cache=self_cache, cache_update_index=t)
        x = x + h
        h, weights, _ = self.cross_attention(self.cross_norm(x), query_mask=query_mask,
                                             value_mask=memory_mask, cache=memory_cache,
                                             return_attention_scores=True)
        x = x + h
        return x + self.ff(self.ff_norm(x)), self_cache, weights


@keras.saving.register_keras_serializable(package="translate")
class TransformerSeq2Seq(Seq2SeqModel):
    """Pre-LN Transformer (Xiong et al. 2020) with sinusoidal positions.

    Decoding (`decoding_step`) runs one position a step: each decoder layer keeps its
    self-attention keys and values in a cache carried in the step state (tiled and reordered
    with the beams), and the cross-attention keys and values of the memory are projected once
    per sentence.

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
        if c.tie_embeddings:
            self.output_layer = _TiedOutput(lambda: self.tgt_embedding.embeddings,
                                            c.tgt_vocab_size, name="logits")
        else:
            self.output_layer = keras.layers.Dense(c.tgt_vocab_size, name="logits")

    def _embed(self, embedding, tokens, training, positions=None):
        """tokens [B, T] -> [B, T, D] at `positions` [T, D] (default: the first T)."""
        if positions is None:
            positions = self.positions[:ops.shape(tokens)[1]]
        scale = ops.cast(ops.sqrt(float(self.config.units)), embedding.compute_dtype)
        x = embedding(tokens) * scale
        x = x + ops.cast(positions, x.dtype)[None]
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

    def _decoder_layers(self, decoder_in, memory, memory_mask, training=False):
        """-> (normed decoder states [B, T, D], each layer's cross-attention [B, N, T, S])."""
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
        hidden, layer_weights = self._decoder_layers(decoder_in, memory, memory_mask, training)
        attention = ops.mean(ops.cast(layer_weights[-1], "float32"), axis=1)
        return ops.cast(self.output_layer(hidden), "float32"), attention

    def call_with_attention(self, inputs, training=False):
        """Like `call`, and the attention guided alignment supervises: (logits float32
        [B, T, V], the last layer's head mean [B, T, S] float32)."""
        memory, mask, _ = self.encode(inputs["source"], training=training)
        return self.decode(inputs["decoder_in"], memory, mask, training=training)

    def call(self, inputs, training=False):
        return self.call_with_attention(inputs, training=training)[0]

    def initial_decoding_state(self, batch_size, max_length, cache=True):
        """The step state of `decoding_step`.

        Args:
            batch_size: R, an int or int scalar tensor.
            max_length: T_max, the most positions decoded.
            cache: The state of the cached step (see `decoding_step`).

        Returns:
            A list: the decoded prefix, int32 [R, T_max] (0 = not yet decoded), then with
            `cache` each decoder layer's self-attention cache [R, 2, T_max, N, K] in the
            compute dtype.
        """
        prefix = ops.zeros((batch_size, max_length), "int32")
        if not cache:
            return [prefix]
        return [prefix] + [block.self_attention.initial_cache(batch_size, max_length)
                           for block in self.decoder_blocks]

    def decoding_step(self, memory, mask, cache=True):
        """The step function for `translate.decoding`, over the (possibly beam-tiled) memory.

        With `cache` (the default), each step runs the decoder on the new token alone: every
        layer appends its self-attention keys and values to its cache in the state, and the
        cross-attention keys and values of the memory are projected once, here. Without it,
        each step writes token t into the prefix and re-runs the decoder over the whole
        prefix (O(T²); kept to compare against). Both take the state of
        `initial_decoding_state` with the same `cache`.

        Args:
            memory: [R, S, D], the encoder's output.
            mask: bool [R, S].
            cache: Whether to decode with the key/value caches.

        Returns:
            `step(tokens int32 [R], state, t) -> (logits float32 [R, V], state, alignments
            float32 [R, S])`.
        """
        if not cache:
            return self._uncached_step(memory, mask)
        memory_caches = [block.cross_attention.compute_cache(memory)
                         for block in self.decoder_blocks]  # each [R, 2, S, N, K]

        def step(tokens, states, t):
            tokens = ops.cast(tokens, "int32")
            prefix = self._write_token(states[0], tokens, t)  # [R, T_max]
            x = self._embed(self.tgt_embedding, tokens[:, None], False,
                            positions=ops.take(self.positions, ops.reshape(t, (1,)), axis=0))
            query_mask = ops.not_equal(tokens, 0)[:, None]  # [R, 1]
            self_mask = ops.not_equal(prefix, 0)  # [R, T_max]
            caches, layer_weights = [], []
            for block, self_cache, memory_cache in zip(self.decoder_blocks, states[1:],
                                                       memory_caches, strict=True):
                x, self_cache, weights = block.decode_step(x, query_mask, self_cache, t,
                                                           self_mask, memory_cache, mask)
                caches.append(self_cache)
                layer_weights.append(weights[:, :, 0])  # [R, N, S]
            hidden = self.decoder_norm(x)[:, 0]  # [R, D]
            logits = ops.cast(self.output_layer(hidden), "float32")
            return logits, [prefix, *caches], self._step_alignments(layer_weights)

        return step

    def _uncached_step(self, memory, mask):
        """The step without a cache: it writes token t into the prefix and re-runs the
        decoder over it, but projects only position t onto the vocabulary."""

        def step(tokens, states, t):
            prefix = self._write_token(states[0], ops.cast(tokens, "int32"), t)  # [R, T_max]
            hidden, layer_weights = self._decoder_layers(prefix, memory, mask)
            here = ops.equal(ops.arange(ops.shape(prefix)[1]), t)  # [T_max]
            picked = ops.cast(here, "float32")[None, :, None]  # [1, T_max, 1]
            last = ops.sum(ops.cast(hidden, "float32") * picked, axis=1)  # [R, D]
            logits = ops.cast(self.output_layer(ops.cast(last, hidden.dtype)), "float32")
            # Position t of each layer's weights [R, N, T_max, S] (a sum of one term: exact).
            step_weights = [ops.sum(w * ops.cast(picked[:, None], w.dtype), axis=2)
                            for w in layer_weights]  # each [R, N, S]
            return logits, [prefix], self._step_alignments(step_weights)

        return step

    @staticmethod
    def _write_token(prefix, tokens, t):
        """The prefix int32 [R, T_max] with `tokens` [R] written at position t."""
        here = ops.equal(ops.arange(ops.shape(prefix)[1])[None, :], t)  # [1, T_max]
        return ops.where(here, tokens[:, None], prefix)

    def _step_alignments(self, layer_weights):
        """The alignments a decoding step returns, from the cross-attention weights of that
        step in every layer (a list of L [R, N, S]): float32 [R, L, N, S]."""
        return ops.stack([ops.cast(w, "float32") for w in layer_weights], axis=1)
