"""A drop-in `keras.layers.MultiHeadAttention` with a fused self-attention
projection and a float32 masked softmax."""

import math

import keras
from keras import ops

from attn_core import chunked_attention as chunked
from attn_core import masking
from attn_core.xla_context import compiled_by_xla

# Small sets (T * S up to this) take broadcast products under XLA (see `_small_sets`): on CPUs
# they beat the batched matmuls on a few tokens and lose once the sets grow (fwd + bwd).
SMALL_SET_SIZE = 36


@keras.saving.register_keras_serializable(package="attn_core")
class MultiHeadAttention(keras.layers.MultiHeadAttention):
    """Multi-head attention, a drop-in for `keras.layers.MultiHeadAttention`.

    Same constructor arguments, call signature, variables (same order, names
    and shapes) and numerics as Keras' layer, so
    `ours.set_weights(keras_mha.get_weights())` gives the same outputs and
    scores. Differences:

    - Rank-3 inputs with the default `attention_axes` run as plain 2-D
      matmuls in a [B, N, T, K] layout, with the 1/sqrt(K) scale folded
      into the query kernel, instead of Keras' einsums. Other inputs take
      Keras' einsum path (with the float32 softmax below).
    - With `fused_qkv=True`, self-attention (`key` and `value` omitted or
      the same tensor as `query`) runs the three projections as one matmul
      against the concatenated kernels, [B·T, D] × [D, N·(2K + V)]. It is
      off by default: on CPUs the split and its gradient cost more than the
      launches saved (`benchmarks/attention_bench.py --fused_qkv` compares).
    - Scores and the softmax are always computed in float32, even under
      `mixed_float16` / `mixed_bfloat16`; masked positions get weight 0, so
      a query with every key masked gives zeros, never NaN or a uniform row.
    - Under XLA (`tf.function(jit_compile=True)`, or the JAX backend), short
      sequences (T * S <= 36, e.g. the few tokens of an RL observation) run
      the scores and the context as broadcast products over a [B, T, S, N, K]
      layout, without transposes: XLA fuses them into a few loops, where the
      [B * N] tiny batched matmuls each pay a kernel launch on a CPU.
    - A memory-efficient path (`attn_core.chunked_attention`): an online
      softmax over key blocks of `chunk_size`, with the backward pass
      recomputing each block, so the [T, S] scores are never stored. It is
      taken automatically from 2048 keys on when no scores are returned and
      no attention dropout applies, or always with `chunked_attention=True`.
    - Public building blocks for callers that compute the projections
      themselves (a closed form of structured inputs, a learned query):
      `projection_weights`, `attend_projected`, `output_weights` and
      `uses_broadcast_layout`.
    - An explicit `query_mask` is honoured (Keras reads only the implicit
      one), and the implicit masks of the inputs are left in place (Keras
      deletes them, so a second call on the same tensors runs unmasked).
    - Incremental decoding with a key/value cache, as keras-hub's
      `CachedMultiHeadAttention`: a cache [B, 2, S, N, K] holds the
      projected keys (index 0) and values (index 1). Self-attention appends
      the keys and values of the new positions at `cache_update_index` and
      attends over the cache up to them; cross-attention takes the keys and
      values of the encoder memory from a cache made once per sentence with
      `compute_cache`. `initial_cache` makes an empty self-attention cache.
      See "Call arguments" below; it needs `key_dim == value_dim` and the
      matmul path's conditions (default `attention_axes`, no gate).

    Letters: B batch, T query length, S key length, N heads, K key_dim,
    V value_dim, D model size.

    Args:
        fused_qkv: bool, one projection matmul for self-attention.
        chunked_attention: None picks the memory-efficient path for long key
            sequences; True always takes it (then scores and attention
            dropout are unavailable); False never does.
        chunk_size: keys per block on the chunked path.
        Others: see `keras.layers.MultiHeadAttention`.

    Call arguments:
        query: [B, T, D]. value: [B, S, Dv]. key: optional [B, S, Dk].
        query_mask: optional bool [B, T]. value_mask / key_mask: optional
        bool [B, S]. attention_mask: optional bool [B, T, S].
        return_attention_scores, training, use_causal_mask: as in Keras.
        cache: optional [B, 2, S, N, K], projected keys and values. With
            `cache_update_index`, a self-attention cache: the keys and
            values of the T new positions (projected from `key` and `value`,
            which default to `query`) are written at that index, and the
            queries attend to the cache positions below `index + T` (with
            `use_causal_mask`, query i to the positions up to `index + i`).
            Without it, a cross-attention cache (`compute_cache`) used as
            is; `key` and `value` are then ignored. S here is the cache's
            length; `value_mask`, `key_mask` and `attention_mask` refer to
            its positions. It is cast to the compute dtype.
        cache_update_index: optional int scalar (a Python int or a tensor),
            where the new positions go in a self-attention cache; needs
            `cache`.

    Returns:
        [B, T, D] (or `output_shape`), and with `return_attention_scores`,
        the weights [B, N, T, S]; both in the compute dtype. With a cache:
        `(output, cache)`, or `(output, weights, cache)` with
        `return_attention_scores`, where `cache` is the updated
        self-attention cache (or the cross-attention cache unchanged), in the
        compute dtype.

    Example, greedy steps of a decoder's self-attention:

        cache = layer.initial_cache(batch_size, max_length)
        for t in range(max_length):
            y, cache = layer(x_t, cache=cache, cache_update_index=t)  # x_t [B, 1, D]
    """

    def __init__(self, *args, fused_qkv=False, chunked_attention=None, chunk_size=512, **kwargs):
        super().__init__(*args, **kwargs)
        if chunked_attention not in (None, True, False):
            raise ValueError("Expected `chunked_attention` in (None, True, False). "
                             f"Received: chunked_attention={chunked_attention!r}")
        chunked.check_chunk_size(chunk_size)
        self.fused_qkv = bool(fused_qkv)
        self.chunked_attention = chunked_attention
        self.chunk_size = chunk_size

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, query_shape if value_shape is None else value_shape, key_shape)

    def _fast_path(self, query, value, key):
        """Whether the matmul path applies: rank-3 inputs, attention over axis 1,
        no gate, and plain float kernels (no LoRA, no quantization)."""
        dense = (self._query_dense, self._key_dense, self._value_dense, self._output_dense)
        return (
            len(query.shape) == 3
            and len(value.shape) == 3
            and len(key.shape) == 3
            and self._attention_axes in (None, (1,))
            and not self._use_gate
            and not self._flash_attention
            and all(
                getattr(d, "quantization_mode", None) is None
                and not getattr(d, "lora_enabled", False)
                for d in dense
            )
        )

    def projection_weights(self, dtype=None):
        """The query, key and value projections as plain matrices.

        For callers that project the inputs themselves (a closed form of structured inputs,
        a learned query) and then finish with `attend_projected`: `x @ kernel + bias` equals
        the layer's own projection of `x`, heads side by side.

        Args:
            dtype: The dtype of the returned tensors (default: the compute dtype).

        Returns:
            `(kernels, biases)`: kernels [Dq, N·K], [Dk, N·K], [Dv, N·V] and biases [N·K],
            [N·K], [N·V] (each None when `use_bias=False`). The 1/sqrt(K) scale is folded
            into the query's kernel and bias, as `attend_projected` expects.
        """
        dtype = self.compute_dtype if dtype is None else dtype
        scale = self._inverse_sqrt_key_dim
        dense = (self._query_dense, self._key_dense, self._value_dense)
        multipliers = (scale, 1.0, 1.0)
        kernels = [
            ops.reshape(ops.cast(d.kernel, dtype), (d.kernel.shape[0], -1)) * ops.cast(c, dtype)
            for d, c in zip(dense, multipliers, strict=True)
        ]
        biases = [
            ops.reshape(ops.cast(d.bias, dtype), (-1,)) * ops.cast(c, dtype)
            if self._use_bias else None
            for d, c in zip(dense, multipliers, strict=True)
        ]
        return kernels, biases

    def output_weights(self, dtype=None):
        """The output projection as a matrix: `context @ kernel + bias` with the context's
        heads side by side, [..., N·V] -> [..., O] (O: the product of `output_shape`).

        Args:
            dtype: The dtype of the returned tensors (default: the compute dtype).

        Returns:
            `(kernel, bias)`: [N·V, O] and [O] (None when `use_bias=False`).
        """
        dtype = self.compute_dtype if dtype is None else dtype
        kernel = self._output_dense.kernel  # [N, V, *out]
        flat = (-1, math.prod(kernel.shape[2:]))
        bias = (ops.reshape(ops.cast(self._output_dense.bias, dtype), (-1,))
                if self._use_bias else None)
        return ops.reshape(ops.cast(kernel, dtype), flat), bias

    def uses_broadcast_layout(self, query, key):
        """Whether attention of `query` [B, T, ...] over `key` [B, S, ...] takes the
        broadcast-product layout: static T and S with T·S <= `SMALL_SET_SIZE`, under XLA.

        A caller computing its own attention over such small sets can follow the same
        choice (XLA fuses broadcast products over a few tokens into a few loops, where
        B·N tiny matmuls each cost a kernel launch).
        """
        return self._small_sets(query, key)

    def attend_projected(self, query, key, value, attention_mask=None, training=None,
                         return_attention_scores=False):
        """The attention and output projection of inputs already projected.

        The second half of the layer's call, for callers that compute the projections
        themselves (see `projection_weights`); the layout (matmuls or broadcast products) is
        chosen as in a call.

        Args:
            query: [B, T, N·K], the projected queries, 1/sqrt(K) scale included.
            key: [B, S, N·K], the projected keys.
            value: [B, S, N·V], the projected values.
            attention_mask: optional bool [B, T, S], True = attend.
            training: Whether attention dropout applies.
            return_attention_scores: Also return the weights.

        Returns:
            [B, T, *output_shape], and with `return_attention_scores` the weights
            [B, N, T, S]; in the compute dtype. A query with no key to attend gives zeros.
        """
        heads_first = not self._small_sets(query, key)
        q, k, v = (self._split_heads(ops.cast(y, self.compute_dtype), y, heads_first)
                   for y in (query, key, value))
        context, weights = self._attend(q, k, v, attention_mask, heads_first, training,
                                        return_attention_scores)
        output = self._output_projection(query, context, heads_first=heads_first)
        return (output, weights) if return_attention_scores else output

    def initial_cache(self, batch_size, max_length, dtype=None):
        """An empty self-attention cache for `max_length` positions.

        Args:
            batch_size: B, an int or an int scalar tensor.
            max_length: S, the most positions the cache will hold.
            dtype: The cache's dtype (default: the compute dtype).

        Returns:
            Zeros [B, 2, S, N, K].

        Raises:
            ValueError: if the layer cannot use a cache (see `compute_cache`).
        """
        self._check_cacheable()
        dtype = self.compute_dtype if dtype is None else dtype
        return ops.zeros((batch_size, 2, max_length, self._num_heads, self._key_dim), dtype)

    def compute_cache(self, value, key=None):
        """The cross-attention cache of a memory: its projected keys and values, once.

        Calls with `cache=compute_cache(memory)` and no `cache_update_index` give the same
        result as calls with `value=memory`, without projecting the memory again.

        Args:
            value: [B, S, Dv], e.g. the encoder's output.
            key: optional [B, S, Dk] (default: `value`).

        Returns:
            [B, 2, S, N, K] in the compute dtype: keys at index 0, values at index 1.

        Raises:
            ValueError: if the layer is not built, or cannot use a cache (`value_dim` other
                than `key_dim`, a gate, other `attention_axes`, quantized or LoRA kernels).
        """
        if not self.built:
            raise ValueError(f"Expected a built layer for compute_cache (call it once, or "
                             f"build it). Received: layer {self.name!r} not built")
        self._check_cacheable()
        key = value if key is None else key
        k = self._project(key, 1)  # [B, S, N, K]
        v = self._project(value, 2)  # [B, S, N, K]
        return ops.stack([k, v], axis=1)

    def _check_cacheable(self):
        """Raises unless the cache applies: keys and values of one size (stacked in one
        tensor), and the plain matmul projections."""
        value_dim = self._value_dim if self._value_dim else self._key_dim
        if value_dim != self._key_dim:
            raise ValueError("Expected value_dim == key_dim for a key/value cache. Received: "
                             f"key_dim={self._key_dim}, value_dim={value_dim}")
        dense = [getattr(self, name, None)  # None before `build`
                 for name in ("_query_dense", "_key_dense", "_value_dense", "_output_dense")]
        plain = all(getattr(d, "quantization_mode", None) is None
                    and not getattr(d, "lora_enabled", False) for d in dense)
        if (self._attention_axes not in (None, (1,)) or self._use_gate or self._flash_attention
                or not plain):
            raise ValueError(
                "Expected the default attention_axes, no gate, no flash attention and plain "
                "kernels for a key/value cache. Received: attention_axes="
                f"{self._attention_axes}, use_gate={self._use_gate}, "
                f"flash_attention={self._flash_attention}")

    def _project(self, x, which):
        """One of the projections (0 query, 1 key, 2 value) of `x` [B, T, D] -> [B, T, N, K],
        in the compute dtype (the query's with the 1/sqrt(K) scale)."""
        kernels, biases = self.projection_weights()
        x = ops.cast(x, self.compute_dtype)
        y = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), kernels[which])
        if biases[which] is not None:
            y = y + biases[which]
        return self._split_heads(y, x, heads_first=False)

    def _cached_call(self, query, value, key, query_mask, value_mask, key_mask, attention_mask,
                     return_attention_scores, training, use_causal_mask, cache,
                     cache_update_index):
        """A call with a self-attention (`cache_update_index`) or cross-attention cache; see
        the class docstring."""
        if cache is None:
            raise ValueError("Expected a cache with cache_update_index. Received: cache=None")
        if len(query.shape) != 3 or len(cache.shape) != 5:
            raise ValueError("Expected query [B, T, D] and cache [B, 2, S, N, K]. Received: "
                             f"query.shape={query.shape}, cache.shape={cache.shape}")
        self._check_cacheable()
        if query_mask is None:
            query_mask = masking.get_keras_mask(query)
        cache = ops.cast(cache, self.compute_dtype)
        length = ops.shape(query)[1]
        if cache_update_index is None:
            q = self._project(query, 0)  # [B, T, N, K]
            offset = 0
        else:
            self_attention = (value is None or value is query) and (key is None or key is query)
            value = query if value is None else value
            key = value if key is None else key
            if self.fused_qkv and self_attention:
                q, k, v = self._projections(query, value, key, True, heads_first=False)
            else:
                q, k, v = (self._project(x, i) for i, x in enumerate((query, key, value)))
            offset = ops.cast(cache_update_index, "int32")
            cache = self._write_cache(cache, ops.stack([k, v], axis=1), offset)
        mask = self._cache_mask(query_mask, value_mask, key_mask, attention_mask,
                                use_causal_mask, offset, cache_update_index is not None,
                                length, ops.shape(cache)[2])  # [B|1, T|1, S] or None
        k, v = cache[:, 0], cache[:, 1]  # [B, S, N, K]
        # One query a step (decoding) takes broadcast products over the cache's own layout;
        # longer queries (a prefix at once) the batched matmuls, after transposes.
        heads_first = query.shape[1] != 1 and not self._small_sets(query, k)
        if heads_first:
            q, k, v = (ops.transpose(y, (0, 2, 1, 3)) for y in (q, k, v))  # [B, N, T|S, K]
        context, weights = self._attend(q, k, v, mask, heads_first, training,
                                        return_attention_scores)
        output = self._output_projection(query, context, heads_first=heads_first)
        if query_mask is not None:
            masking.set_keras_mask(output, query_mask)
        if return_attention_scores:
            return output, weights, cache
        return output, cache

    @staticmethod
    def _write_cache(cache, update, index):
        """The cache [B, 2, S, N, K] with `update` [B, 2, T, N, K] written at positions
        index .. index + T - 1.

        Under XLA a dynamic-update-slice (`ops.slice_update`), in place. TensorFlow's
        op-by-op executor has no kernel of its own for it and compiles one with XLA for every
        new shape (each batch of a decoder), so there the update is a select over
        the S positions instead, O(S) like the attention over them.
        """
        if compiled_by_xla():
            return ops.slice_update(cache, (0, 0, index, 0, 0), update)
        positions = ops.arange(ops.shape(cache)[2])  # [S]
        length = update.shape[2]
        if length != 1:  # spread the T rows over the S positions
            length = ops.shape(update)[2]
            update = ops.take(update, ops.clip(positions - index, 0, length - 1), axis=2)
        window = ops.logical_and(ops.greater_equal(positions, index),
                                 ops.less(positions, index + length))
        return ops.where(window[None, None, :, None, None], update, cache)

    @staticmethod
    def _cache_mask(query_mask, value_mask, key_mask, attention_mask, use_causal_mask, offset,
                    appended, query_length, cache_length):
        """The bool mask [B|1, T|1, S] of a cached call, or None when nothing is masked.

        After an update at `offset`, keys at `offset + T` and beyond are not yet written;
        with `use_causal_mask`, query i sees the keys up to `offset + i`.
        """
        positions = ops.arange(cache_length)[None, None, :]  # [1, 1, S]
        rows = ops.arange(query_length)[None, :, None]  # [1, T, 1]
        visible = None
        if use_causal_mask:
            visible = ops.less_equal(positions, rows + offset)  # [1, T, S]
        elif appended:
            visible = ops.less(positions, offset + query_length)  # [1, 1, S]
        expand = [None if m is None else ops.expand_dims(masking.as_bool_mask(m), axis)
                  for m, axis in ((query_mask, -1), (value_mask, 1), (key_mask, 1))]
        return masking.merge_masks(*expand, attention_mask, visible)

    def compute_output_spec(self, query, value=None, key=None, query_mask=None,
                            value_mask=None, key_mask=None, attention_mask=None,
                            return_attention_scores=False, training=None, use_causal_mask=False,
                            cache=None, cache_update_index=None):
        if cache is None and cache_update_index is None:
            return super().compute_output_spec(
                query, query if value is None else value, key, query_mask, value_mask,
                key_mask, attention_mask, return_attention_scores, training, use_causal_mask)
        output = keras.KerasTensor(self.compute_output_shape(query.shape, query.shape),
                                   dtype=self.compute_dtype)
        cache_spec = keras.KerasTensor(cache.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output, cache_spec
        weights = keras.KerasTensor(
            (query.shape[0], self._num_heads, query.shape[1], cache.shape[2]),
            dtype=self.compute_dtype)
        return output, weights, cache_spec

    def _projections(self, query, value, key, fused, heads_first=True):
        """Q, K, V as [B, N, T, K], [B, N, S, K], [B, N, S, V] by plain matmuls.

        With `heads_first=False` they stay [B, T, N, K], [B, S, N, K], [B, S, N, V].

        The 1/sqrt(K) scale is folded into the query kernel and bias. With
        `fused`, the three projections of a self-attention input are one
        matmul against the concatenated kernels, [B·T, D] x [D, N·(2K + V)].
        """
        kernels, biases = self.projection_weights()

        def flat(x):
            return ops.reshape(x, (-1, x.shape[-1]))  # [B*T, D]

        if fused:
            qkv = ops.matmul(flat(query), ops.concatenate(kernels, axis=1))  # [B*T, N*(2K+V)]
            if self._use_bias:
                qkv = qkv + ops.concatenate(biases, axis=0)
            sizes = [k.shape[1] for k in kernels]
            projected = ops.split(qkv, [sizes[0], sizes[0] + sizes[1]], axis=1)
        else:
            projected = []
            for x, kernel, bias in zip((query, key, value), kernels, biases, strict=True):
                y = ops.matmul(flat(x), kernel)
                projected.append(y if bias is None else y + bias)
        return [self._split_heads(y, x, heads_first)
                for x, y in zip((query, key, value), projected, strict=True)]

    def _split_heads(self, y, like, heads_first):
        """Projections [B·T, N·K] (or [B, T, N·K]) of the inputs `like` [B, T, ...] ->
        [B, N, T, K] with `heads_first`, else [B, T, N, K]."""
        shape = ops.shape(like)
        y = ops.reshape(y, (shape[0], shape[1], self._num_heads, -1))  # [B, T, N, K]
        return ops.transpose(y, (0, 2, 1, 3)) if heads_first else y  # [B, N, T, K]

    def call(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
    ):
        if cache is not None or cache_update_index is not None:
            return self._cached_call(query, value, key, query_mask, value_mask, key_mask,
                                     attention_mask, return_attention_scores, training,
                                     use_causal_mask, cache, cache_update_index)
        self_attention = (value is None or value is query) and (key is None or key is query)
        fused = self.fused_qkv and self_attention
        value = query if value is None else value
        key = value if key is None else key
        if query_mask is None:
            query_mask = masking.get_keras_mask(query)
        if value_mask is None:
            value_mask = masking.get_keras_mask(value)
        if key_mask is None and key is not value:
            key_mask = masking.get_keras_mask(key)
        fast = self._fast_path(query, value, key)
        dropout_active = bool(self._dropout) and bool(training)
        if fast and chunked.use_chunked(
            key.shape[1], return_attention_scores, dropout_active, self.chunked_attention
        ):
            output = self._chunked_call(query, value, key, query_mask, value_mask, key_mask,
                                        attention_mask, fused, use_causal_mask)
            if query_mask is not None:
                masking.set_keras_mask(output, query_mask)
            return output
        if self.chunked_attention and not fast:
            raise ValueError("Expected rank-3 inputs and the default attention_axes for "
                             "chunked_attention=True. Received: query.shape="
                             f"{query.shape}, attention_axes={self._attention_axes}")
        attention_mask = self._compute_attention_mask(
            query,
            value,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
        )  # [B, T, S] or None
        if fast:
            output, scores = self._fast_attention(
                query, value, key, attention_mask, fused, training, return_attention_scores
            )
        else:
            if self._use_gate:
                gate = self._gate_dense(query)
            q, k, v = self._query_dense(query), self._key_dense(key), self._value_dense(value)
            output, scores = self._compute_attention(
                q, k, v, attention_mask, training, return_attention_scores
            )
            if self._use_gate:
                output = ops.multiply(output, gate)
            output = self._output_dense(output)
        if query_mask is not None:
            masking.set_keras_mask(output, query_mask)
        if return_attention_scores:
            return output, scores
        return output

    def _fast_attention(
        self, query, value, key, attention_mask, fused, training, return_attention_scores
    ):
        """The matmul path: [B, T, D] inputs -> ([B, T, *output_shape], [B, N, T, S]).

        Short sequences under XLA (`_small_sets`) keep the heads last: their scores and
        context are broadcast products over [B, T, S, N, K], with no transposes.
        """
        small = self._small_sets(query, key)
        q, k, v = self._projections(query, value, key, fused, heads_first=not small)
        context, weights = self._attend(q, k, v, attention_mask, not small, training,
                                        return_attention_scores)
        return self._output_projection(query, context, heads_first=not small), weights

    def _attend(self, q, k, v, attention_mask, heads_first, training, return_attention_scores):
        """Softmax attention over projected (and pre-scaled) queries, keys and values.

        Args:
            q, k, v: [B, N, T, K], [B, N, S, K], [B, N, S, V] with `heads_first`; else
                [B, T, N, K], [B, S, N, K], [B, S, N, V] (the broadcast-product layout of
                `_small_sets`). The 1/sqrt(K) scale is already in `q`.
            attention_mask: optional bool [B, T, S].

        Returns:
            `(context, weights)`: [B, N, T, V] ([B, T, N, V] heads last), and the weights
            [B, N, T, S] in the compute dtype (None unless `return_attention_scores`).
        """
        if heads_first:  # q [B, N, T, K], k [B, N, S, K]
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # [B, N, T, S]
            key_axis, mask_axis = -1, 1
        else:  # q [B, T, N, K], k [B, S, N, K]
            scores = ops.sum(q[:, :, None] * k[:, None], axis=-1)  # [B, T, S, N]
            key_axis, mask_axis = 2, -1
        if attention_mask is not None:
            attention_mask = ops.expand_dims(attention_mask, mask_axis)  # [B,T,S,1] | [B,1,T,S]
        # Rows with no key to attend are zeroed on the context, 4x smaller than the
        # weights here, and on the weights only when they are returned.
        weights = masking.masked_softmax(scores, attention_mask, axis=key_axis,
                                         zero_empty_rows=False)
        weights = ops.cast(weights, self.compute_dtype)  # [B, T, S, N] | [B, N, T, S]
        dropped = self._dropout_layer(weights, training=training) if self._dropout else weights
        if heads_first:
            context = ops.matmul(dropped, v)  # [B, N, T, V]
        else:
            context = ops.sum(dropped[..., None] * v[:, None], axis=2)  # [B, T, N, V]
        if attention_mask is not None:
            any_key = ops.cast(masking.has_any_key(attention_mask, axis=key_axis),
                               weights.dtype)  # [B, T, 1, 1] | [B, 1, T, 1]
            context = context * any_key
            if return_attention_scores:
                weights = weights * any_key
        if not return_attention_scores:
            return context, None
        return context, (weights if heads_first else ops.transpose(weights, (0, 3, 1, 2)))

    @staticmethod
    def _small_sets(query, key):
        """Whether the broadcast path applies: static T and S with T * S <= 36, under XLA."""
        t, s = query.shape[1], key.shape[1]
        return t is not None and s is not None and t * s <= SMALL_SET_SIZE and compiled_by_xla()

    def _chunked_call(self, query, value, key, query_mask, value_mask, key_mask, attention_mask,
                      fused, use_causal_mask):
        """The memory-efficient path: [B, T, D] inputs -> [B, T, *output_shape].

        Key padding stays a [B, 1, S] mask and causality a flag, so no [T, S]
        tensor is formed unless an explicit `attention_mask` is given.
        """
        q, k, v = self._projections(query, value, key, fused)  # [B, N, T|S, K|V]
        mask = masking.merge_masks(
            None if value_mask is None else ops.expand_dims(ops.cast(value_mask, "bool"), 1),
            None if key_mask is None else ops.expand_dims(ops.cast(key_mask, "bool"), 1),
            attention_mask,
        )  # [B, 1, S], [B, T, S] or None
        context = chunked.chunked_attention(
            q, k, v, mask, use_causal_mask=use_causal_mask, chunk_size=self.chunk_size
        )  # [B, N, T, V]
        if query_mask is not None:
            keep = ops.cast(ops.reshape(ops.cast(query_mask, "bool"),
                                        (ops.shape(q)[0], 1, -1, 1)), context.dtype)
            context = context * keep
        return self._output_projection(query, context)

    def _output_projection(self, query, context, heads_first=True):
        """[B, N, T, V] context ([B, T, N, V] with `heads_first=False`) -> [B, T, *output_shape]
        through the output kernel."""
        if heads_first:
            context = ops.transpose(context, (0, 2, 1, 3))  # [B, T, N, V]
        shape = ops.shape(query)
        kernel, bias = self.output_weights()  # [N*V, O], [O]
        out_shape = tuple(self._output_dense.kernel.shape[2:])
        output = ops.matmul(ops.reshape(context, (-1, kernel.shape[0])), kernel)  # [B*T, O]
        if bias is not None:
            output = output + bias
        return ops.reshape(output, (shape[0], shape[1]) + out_shape)

    def get_config(self):
        config = super().get_config()
        config["fused_qkv"] = self.fused_qkv
        config["chunked_attention"] = self.chunked_attention
        config["chunk_size"] = self.chunk_size
        return config

    def _compute_attention(
        self, query, key, value, attention_mask=None, training=None,
        return_attention_scores=False, use_causal_mask=False,
    ):
        """Scaled dot product with a float32 masked softmax.

        Args:
            query: [B, T, N, K]. key: [B, S, N, K]. value: [B, S, N, V].
            attention_mask: optional bool [B, T, S] (or broadcastable).

        Returns:
            (output [B, T, N, V], weights [B, N, T, S] or None), compute dtype.
        """
        if self._flash_attention and return_attention_scores:
            raise ValueError(
                "Expected flash_attention=False to return attention scores. "
                f"Received: flash_attention={self._flash_attention}"
            )
        if use_causal_mask:
            causal = self._compute_causal_mask(query, value)
            attention_mask = masking.merge_masks(attention_mask, causal)
        query = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        scores = ops.einsum(self._dot_product_equation, key, query)  # [B, N, T, S]
        if attention_mask is not None:
            expand_axis = -len(self._attention_axes) * 2 - 1
            for _ in range(len(scores.shape) - len(attention_mask.shape)):
                attention_mask = ops.expand_dims(attention_mask, axis=expand_axis)
        weights = masking.masked_softmax(scores, attention_mask, axis=self._softmax.axis)
        weights = ops.cast(weights, self.compute_dtype)
        dropped = self._dropout_layer(weights, training=training) if self._dropout else weights
        output = ops.einsum(self._combine_equation, dropped, value)  # [B, T, N, V]
        return output, (weights if return_attention_scores else None)
