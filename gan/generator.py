"""`Generator`: the SAGAN generator, ResNet up-blocks with self-attention."""

import math

import keras
from keras import ops

from gan.conditional_batch_norm import ConditionalBatchNorm
from gan.generator_block import GeneratorBlock, sn_conv
from gan.model_config import ModelConfig
from gan.spectral_norm import SpectralNorm
from gan.spectral_self_attention import SpectralSelfAttention2D


def generator_widths(config: ModelConfig) -> list[int]:
    """Output channels of G's up-blocks, coarsest first (4×4 → 8×8 is the first)."""
    blocks = int(math.log2(config.resolution)) - 2
    return [config.g_channels * min(2 ** (blocks - 1 - i), 4) for i in range(blocks)]


class Generator(keras.Model):
    """z (and a class label) → image in [-1, 1].

    SN-Dense to 4×4, `log2(resolution) - 2` `GeneratorBlock`s (each 2× up), a
    `SpectralSelfAttention2D` after the block that reaches `g_attention_res` (unless
    `attention="none"`), then BN-ReLU-SNconv3×3-tanh. The image is returned in float32
    whatever the dtype policy.

    Letters: B batch, Z latent size, R resolution, C image channels, P = side², P' = P/4
    (side = g_attention_res).

    Args:
        config: the `ModelConfig`.
        **kwargs: passed to `keras.Model`.

    Call arguments:
        z: [B, Z].
        labels: int [B] (required when `config.num_classes > 0`).
        training: batch statistics and spectral-norm updates.
        return_attention_scores: also return the attention map [B, P, P'] (`None` when
            there is no attention block).

    Returns:
        float32 images [B, R, R, C] (and the attention map).
    """

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        dtype = self.dtype_policy
        widths = generator_widths(config)
        self.base_channels = config.g_channels * min(2 ** len(widths), 4)
        self.dense = SpectralNorm(
            keras.layers.Dense(4 * 4 * self.base_channels, kernel_initializer="orthogonal",
                               name="dense", dtype=dtype), name="sn_dense", dtype=dtype)
        self.blocks = [GeneratorBlock(w, config.num_classes, name=f"block{i}", dtype=dtype)
                       for i, w in enumerate(widths)]
        self.attention = None
        if config.attention == "sagan":
            self.attention = SpectralSelfAttention2D(name="attention", dtype=dtype)
        self.bn = ConditionalBatchNorm(0, name="bn_out", dtype=dtype)
        self.conv_out = sn_conv(config.image_channels, 3, "conv_out", dtype)

    def call(self, z, labels=None, training=False, return_attention_scores=False):
        if self.config.num_classes and labels is None:
            raise ValueError("Expected `labels` for a conditional generator. Received: None")
        h = self.dense(z, training=training)
        h = ops.reshape(h, (-1, 4, 4, self.base_channels))  # [B, 4, 4, C0]
        side, scores = 4, None
        for block in [None, *self.blocks]:
            if block is not None:
                h = block(h, labels, training=training)
                side *= 2
            if self.attention is not None and side == self.config.g_attention_res:
                h, scores = self.attention(h, return_attention_scores=True, training=training)
        h = ops.relu(self.bn(h, training=training))
        images = ops.tanh(ops.cast(self.conv_out(h, training=training), "float32"))
        if return_attention_scores:
            return images, scores
        return images

    def build_for(self, batch_size=2):
        """Creates the variables with one call on zeros."""
        z = ops.zeros((batch_size, self.config.z_dim))
        labels = ops.zeros((batch_size,), "int32") if self.config.num_classes else None
        self(z, labels)
        return self
