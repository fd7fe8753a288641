"""Memory-efficient dot-product attention: an online softmax over key blocks.

FlashAttention's algorithm (Dao et al. 2022) in `keras.ops`: the keys are
visited one block of `chunk_size` at a time while a running maximum, a running
normaliser and a running weighted sum are kept per query, so the [T, S] score
matrix never exists. The backward pass recomputes each block's scores from the
saved log-sum-exp instead of storing them, through a custom gradient. Peak
memory is O(T·chunk_size) per head instead of O(T·S), in a tf.function and under an
eager GradientTape alike.
"""

import keras
from keras import ops

from attn_core import masking

# The plain path wins below this many keys; above it the chunked path saves memory
# (MultiHeadAttention picks the chunked path automatically from here on).
AUTO_MIN_KEYS = 2048
_NEG = -1e9  # masked scores (always float32 here)


def _sequential_loop(upper, body, init):
    """`ops.fori_loop(0, upper, body, init)`, one iteration at a time.

    TensorFlow's while loop runs up to 10 iterations at once where their ops do not depend on
    the carry, and a block's scores depend only on the block index: 10 [B, N, T, C] score
    blocks would be alive together, which is the memory this path exists to save.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        _, out = tf.while_loop(lambda i, _: i < upper, lambda i, c: (i + 1, body(i, c)),
                               (tf.constant(0), init), parallel_iterations=1)
        return out
    return ops.fori_loop(0, upper, body, init)


def _unrecorded(*tensors):
    """`tensors` for the forward pass of a custom gradient: hidden from an eager tape.

    TensorFlow's eager `tf.custom_gradient` calls the forward function while the caller's
    GradientTape is still recording, and the tape keeps the inputs and outputs of every op it
    records until `tape.gradient`: over the key-block loop, every block's [B, N, T, C] scores
    and probabilities, O(T·S) in all, the memory this path exists to save. The custom gradient
    never uses those records (it recomputes the blocks), so on eager TensorFlow the forward
    reads its inputs through `stop_gradient`, whose outputs no tape watches (as TensorFlow's
    own `recompute_grad` stops recording around its forward). Elsewhere (a tf.function graph,
    JAX's tracing) the unused forward ops cost nothing, and the inputs are left as they are.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            return tuple(ops.stop_gradient(x) for x in tensors)
    return tensors


def check_chunk_size(chunk_size):
    """Raises ValueError unless `chunk_size` is a positive int."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(
            f"Expected `chunk_size` to be a positive integer. Received: chunk_size={chunk_size!r}"
        )


def chunked_attention(query, key, value, attention_mask=None, use_causal_mask=False,
                      chunk_size=512):
    """Softmax attention over key blocks, with recomputation in the backward pass.

    Equal to `softmax(query · keyᵀ + mask) · value` within float tolerance, in
    forward and backward. Scores, the softmax and the accumulators are float32
    whatever the input dtype. A query whose keys are all masked gets zeros.

    Letters: B batch, N heads, T queries, S keys, K key size, V value size,
    C `chunk_size`.

    Example:

    >>> q = k = v = keras.ops.ones((1, 2, 4096, 16))
    >>> chunked_attention(q, k, v, chunk_size=512).shape
    (1, 2, 4096, 16)

    Args:
        query: [B, N, T, K], already scaled (e.g. by 1/sqrt(K)).
        key: [B, N, S, K].
        value: [B, N, S, V].
        attention_mask: optional bool [B, T, S] or [B, 1, S] (True attends).
            A [B, 1, S] key-padding mask costs no [T, S] memory.
        use_causal_mask: bool; query t attends keys s <= t (T == S).
        chunk_size: keys per block, C.

    Returns:
        [B, N, T, V] in the dtype of `value`.

    Raises:
        ValueError: for a bad `chunk_size`, mismatched ranks, or a causal
            mask with T != S.
    """
    check_chunk_size(chunk_size)
    for name, x in (("query", query), ("key", key), ("value", value)):
        if len(x.shape) != 4:
            raise ValueError(f"Expected `{name}` of rank 4 [B, N, T, K]. "
                             f"Received: {name}.shape={x.shape}")
    seq_q, seq_k = query.shape[2], key.shape[2]
    if use_causal_mask and seq_q is not None and seq_k is not None and seq_q != seq_k:
        raise ValueError("Expected T == S with use_causal_mask=True. "
                         f"Received: query.shape={query.shape}, key.shape={key.shape}")
    dtype = value.dtype
    blocks = -(-key.shape[2] // chunk_size) if key.shape[2] is not None else None
    if blocks is None:
        raise ValueError("Expected a static key length. Received: key.shape=" f"{key.shape}")
    padded = blocks * chunk_size
    pad = padded - key.shape[2]

    # Key validity [B, 1, S'] (padding keys invalid) or the full mask [B, T, S'].
    if attention_mask is None:
        mask = ops.ones((1, 1, key.shape[2]), dtype="bool")
    else:
        mask = ops.cast(attention_mask, "bool")
        if len(mask.shape) != 3:
            raise ValueError("Expected `attention_mask` of rank 3 [B, T, S] or [B, 1, S]. "
                             f"Received: attention_mask.shape={mask.shape}")
    if pad:
        key = ops.pad(key, ((0, 0), (0, 0), (0, pad), (0, 0)))
        value = ops.pad(value, ((0, 0), (0, 0), (0, pad), (0, 0)))
        mask = ops.pad(mask, ((0, 0), (0, 0), (0, pad)), constant_values=False)
    mask_rows = mask.shape[1]
    bias = ops.where(mask, 0.0, _NEG)  # float32 [B|1, T|1, S']
    bias = ops.expand_dims(bias, 1)  # [B|1, 1, T|1, S']
    query_positions = ops.expand_dims(ops.arange(query.shape[2], dtype="int32"), 1)  # [T, 1]

    def block_bias(bias_, j):
        """The float32 bias of key block j: [B|1, 1, T|1, C] (+ causal [T, C])."""
        start = j * chunk_size
        b = ops.slice(bias_, (0, 0, 0, start),
                      (bias_.shape[0], 1, mask_rows, chunk_size))
        if use_causal_mask:
            key_positions = start + ops.arange(chunk_size, dtype="int32")  # [C]
            b = b + ops.where(key_positions[None, :] <= query_positions, 0.0, _NEG)
        return b

    def block(x, j):
        start = j * chunk_size
        shape = ops.shape(x)
        return ops.slice(x, (0, 0, start, 0), (shape[0], shape[1], chunk_size, x.shape[3]))

    def scores_of(q, k_j, bias_, j):
        s = ops.cast(ops.matmul(q, ops.transpose(k_j, (0, 1, 3, 2))), "float32")  # [B, N, T, C]
        return s + block_bias(bias_, j)

    @ops.custom_gradient
    def attend(q, k, v, bias_):
        qshape = ops.shape(q)
        # The forward reads these; the backward below reads the arguments themselves.
        q_fwd, k_fwd, v_fwd, bias_fwd = _unrecorded(q, k, v, bias_)

        def forward_body(j, carry):
            m, l, acc = carry  # [B, N, T, 1], [B, N, T, 1], [B, N, T, V]
            s = scores_of(q_fwd, block(k_fwd, j), bias_fwd, j)
            m_new = ops.maximum(m, ops.max(s, axis=-1, keepdims=True))
            p = ops.exp(s - m_new)  # [B, N, T, C]
            correction = ops.exp(m - m_new)
            l = l * correction + ops.sum(p, axis=-1, keepdims=True)
            pv = ops.matmul(ops.cast(p, v.dtype), block(v_fwd, j))
            acc = acc * correction + ops.cast(pv, "float32")
            return m_new, l, acc

        init = (
            ops.full((qshape[0], qshape[1], qshape[2], 1), 2.0 * _NEG, dtype="float32"),
            ops.zeros((qshape[0], qshape[1], qshape[2], 1), dtype="float32"),
            ops.zeros((qshape[0], qshape[1], qshape[2], v.shape[3]), dtype="float32"),
        )
        m, l, acc = _sequential_loop(blocks, forward_body, init)
        valid = ops.cast(m > 0.5 * _NEG, "float32")  # [B, N, T, 1]: some key attended
        out32 = acc / ops.maximum(l, 1e-30) * valid  # [B, N, T, V]
        lse = m + ops.log(ops.maximum(l, 1e-30))  # [B, N, T, 1]

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            d_out = ops.cast(upstream, "float32") * valid  # [B, N, T, V]
            delta = ops.sum(d_out * out32, axis=-1, keepdims=True)  # [B, N, T, 1]

            def backward_body(j, carry):
                dq, dk, dv = carry
                k_j, v_j = block(k, j), block(v, j)
                p = ops.exp(scores_of(q, k_j, bias_, j) - lse)  # [B, N, T, C]
                dv_j = ops.matmul(ops.transpose(p, (0, 1, 3, 2)), d_out)  # [B, N, C, V]
                dp = ops.matmul(d_out, ops.transpose(ops.cast(v_j, "float32"), (0, 1, 3, 2)))
                ds = p * (dp - delta)  # [B, N, T, C]
                dq = dq + ops.matmul(ds, ops.cast(k_j, "float32"))  # [B, N, T, K]
                dk_j = ops.matmul(ops.transpose(ds, (0, 1, 3, 2)), ops.cast(q, "float32"))
                start = j * chunk_size
                dk = ops.slice_update(dk, (0, 0, start, 0), dk_j)
                dv = ops.slice_update(dv, (0, 0, start, 0), dv_j)
                return dq, dk, dv

            init_grads = (
                ops.zeros(ops.shape(q), dtype="float32"),
                ops.zeros(ops.shape(k), dtype="float32"),
                ops.zeros(ops.shape(v), dtype="float32"),
            )
            dq, dk, dv = _sequential_loop(blocks, backward_body, init_grads)
            return (ops.cast(dq, q.dtype), ops.cast(dk, k.dtype), ops.cast(dv, v.dtype),
                    ops.zeros_like(bias_))

        return ops.cast(out32, v.dtype), grad

    out = attend(query, key, value, bias)
    return ops.cast(out, dtype)


def plain_attention(query, key, value, attention_mask=None, use_causal_mask=False):
    """The reference: the same contract as `chunked_attention`, with the full [T, S] scores.

    Args and Returns: see `chunked_attention`.
    """
    scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))  # [B, N, T, S]
    mask = None if attention_mask is None else ops.expand_dims(ops.cast(attention_mask, "bool"), 1)
    if use_causal_mask:
        mask = masking.merge_masks(mask, masking.causal_mask(query.shape[2], key.shape[2]))
    weights = masking.masked_softmax(scores, mask)  # float32 [B, N, T, S]
    return ops.cast(ops.matmul(ops.cast(weights, value.dtype), value), value.dtype)


def use_chunked(num_keys, return_scores, dropout_active, requested=None):
    """Whether to take the chunked path: as `requested`, else for long key sequences.

    Args:
        num_keys: S, or None when unknown.
        return_scores: the caller wants the [T, S] weights (only the plain path has them).
        dropout_active: attention dropout applies (only the plain path has it).
        requested: True / False to force a path, None for automatic.

    Raises:
        ValueError: when the chunked path is requested with scores or dropout.
    """
    if requested:
        if return_scores:
            raise ValueError("Expected return_attention_scores=False on the chunked path "
                             "(it never forms the scores). Received: return_attention_scores=True")
        if dropout_active:
            raise ValueError("Expected no attention dropout on the chunked path. "
                             "Received: dropout > 0 with training=True")
        return True
    if requested is False or return_scores or dropout_active or num_keys is None:
        return False
    return num_keys >= AUTO_MIN_KEYS


