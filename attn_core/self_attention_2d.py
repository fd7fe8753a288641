"""The SAGAN non-local self-attention block for feature maps."""

import keras
from keras import ops

from attn_core import masking


@keras.saving.register_keras_serializable(package="attn_core")
class SelfAttention2D(keras.layers.Layer):
    """Self-attention over the pixels of a feature map (Zhang et al. 2019).

    f = 1×1 conv to C/8 (query), g = 1×1 conv to C/8 (key), h = 1×1 conv to
    C/2 (value); keys and values are max-pooled 2×2 when `pool=True`; the
    attended values go through a 1×1 conv back to C, and the block returns
    x + γ·o with γ a learned scalar initialised to 0, so it is the identity
    at initialisation.

    Letters: B batch, H height, W width, C channels, P = H·W pixels,
    P' = P/4 pooled pixels (P' = P without pooling).

    Example:

    >>> layer = SelfAttention2D()
    >>> y, attention = layer(keras.ops.ones((2, 8, 8, 16)), return_attention_scores=True)
    >>> y.shape, attention.shape
    ((2, 8, 8, 16), (2, 64, 16))

    Args:
        pool: bool, max-pool keys and values 2×2 (SAGAN's default).
        qk_ratio: C / (query and key channels); 8 in SAGAN.
        v_ratio: C / (value channels); 2 in SAGAN.
        kernel_initializer: for the four 1×1 convolutions.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: [B, H, W, C] (channels last). H and W must be even when
            pooling.
        return_attention_scores: also return the attention map [B, P, P'],
            where row i is where pixel i (row-major) looks.

    Returns:
        [B, H, W, C] in the compute dtype, and the attention map [B, P, P'].

    Raises:
        ValueError: for a non-positive ratio, an input that is not rank 4,
            too few channels for the ratios, or odd H or W when pooling.
    """

    def __init__(self, pool=True, qk_ratio=8, v_ratio=2, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("qk_ratio", qk_ratio), ("v_ratio", v_ratio)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"Expected `{name}` to be a positive integer. Received: {name}={value}"
                )
        self.pool = bool(pool)
        self.qk_ratio = qk_ratio
        self.v_ratio = v_ratio
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Expected inputs of rank 4 [B, H, W, C]. Received: input_shape={input_shape}"
            )
        height, width, channels = input_shape[1:]
        if channels is None or channels < max(self.qk_ratio, self.v_ratio):
            raise ValueError(
                f"Expected at least {max(self.qk_ratio, self.v_ratio)} channels. "
                f"Received: input_shape={input_shape}"
            )
        if self.pool and any(d is not None and d % 2 for d in (height, width)):
            raise ValueError(
                "Expected even height and width when pool=True. "
                f"Received: input_shape={input_shape}"
            )

        def conv(filters, in_channels, name):
            layer = keras.layers.Conv2D(
                filters, 1, use_bias=False, name=name,
                kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
            )
            layer.build(tuple(input_shape[:3]) + (in_channels,))
            return layer

        self.query_conv = conv(channels // self.qk_ratio, channels, "query_conv")
        self.key_conv = conv(channels // self.qk_ratio, channels, "key_conv")
        self.value_conv = conv(channels // self.v_ratio, channels, "value_conv")
        self.output_conv = conv(channels, channels // self.v_ratio, "output_conv")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def call(self, inputs, return_attention_scores=False):
        shape = ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        query, key, value = self.query_conv(inputs), self.key_conv(inputs), self.value_conv(inputs)
        if self.pool:
            key = ops.max_pool(key, 2, strides=2)  # [B, H/2, W/2, C/8]
            value = ops.max_pool(value, 2, strides=2)  # [B, H/2, W/2, C/2]
        query = ops.reshape(query, (batch, -1, query.shape[-1]))  # [B, P, C/8]
        key = ops.reshape(key, (batch, -1, key.shape[-1]))  # [B, P', C/8]
        value = ops.reshape(value, (batch, -1, value.shape[-1]))  # [B, P', C/2]
        scores = ops.matmul(
            ops.cast(query, "float32"), ops.transpose(ops.cast(key, "float32"), (0, 2, 1))
        )  # [B, P, P']
        attention = ops.cast(masking.masked_softmax(scores), self.compute_dtype)
        out = ops.matmul(attention, value)  # [B, P, C/2]
        out = ops.reshape(out, (batch, height, width, value.shape[-1]))
        out = self.output_conv(out)  # [B, H, W, C]
        outputs = inputs + ops.cast(self.gamma, out.dtype) * out
        if return_attention_scores:
            return outputs, attention
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            pool=self.pool, qk_ratio=self.qk_ratio, v_ratio=self.v_ratio,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
