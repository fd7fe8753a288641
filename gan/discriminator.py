"""`Discriminator`: the SAGAN discriminator, ResNet down-blocks with self-attention and an
optional class projection."""

import math

import keras
from keras import ops

from gan.discriminator_block import DiscriminatorBlock
from gan.model_config import ModelConfig
from gan.spectral_norm import SpectralNorm
from gan.spectral_self_attention import SpectralSelfAttention2D


def discriminator_widths(config: ModelConfig) -> list[int]:
    """Output channels of D's blocks: `log2(resolution) - 2` down-blocks, then one more."""
    downs = int(math.log2(config.resolution)) - 2
    widths = [config.d_channels * min(2 ** i, 4) for i in range(downs)]
    return widths + [widths[-1]]


class Discriminator(keras.Model):
    """Image (and class label) → one float32 logit.

    `DiscriminatorBlock`s down to 4×4 and one at 4×4, a `SpectralSelfAttention2D` after the
    block that reaches `d_attention_res`, ReLU, a sum over pixels, then an SN-Dense to one
    logit plus, when conditional, the projection ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018).
    The head runs in float32.

    Letters: B batch, R resolution, C image channels.

    Args:
        config: the `ModelConfig`.
        **kwargs: passed to `keras.Model`.

    Call arguments:
        images: float [B, R, R, C] in [-1, 1].
        labels: int [B] (required when `config.num_classes > 0`).
        training: spectral-norm updates.

    Returns:
        float32 logits [B].
    """

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        dtype = self.dtype_policy
        widths = discriminator_widths(config)
        self.blocks = [
            DiscriminatorBlock(w, down=i < len(widths) - 1, first=i == 0, name=f"block{i}",
                               dtype=dtype)
            for i, w in enumerate(widths)
        ]
        self.attention = None
        if config.attention == "sagan":
            self.attention = SpectralSelfAttention2D(name="attention", dtype=dtype)
        self.linear = SpectralNorm(
            keras.layers.Dense(1, kernel_initializer="orthogonal", name="linear",
                               dtype="float32"), name="sn_linear", dtype="float32")
        self.embedding = None
        if config.num_classes:
            self.embedding = SpectralNorm(
                keras.layers.Embedding(config.num_classes, widths[-1],
                                       embeddings_initializer="orthogonal", name="embedding",
                                       dtype="float32"), name="sn_embedding", dtype="float32")

    def call(self, images, labels=None, training=False):
        if self.config.num_classes and labels is None:
            raise ValueError(
                "Expected `labels` for a conditional discriminator. Received: labels=None"
            )
        h = images
        side = self.config.resolution
        for i, block in enumerate(self.blocks):
            h = block(h, training=training)
            if i < len(self.blocks) - 1:
                side //= 2
            if (self.attention is not None and side == self.config.d_attention_res
                    and i < len(self.blocks) - 1):
                h = self.attention(h, training=training)
        features = ops.sum(ops.relu(ops.cast(h, "float32")), axis=(1, 2))  # [B, C]
        logits = ops.squeeze(self.linear(features, training=training), -1)  # [B]
        if self.embedding is not None:
            projection = self.embedding(labels, training=training)  # [B, C]
            logits = logits + ops.sum(projection * features, axis=-1)
        return logits

    def build_for(self, batch_size=2):
        """Creates the variables with one call on zeros."""
        images = ops.zeros((batch_size, self.config.resolution, self.config.resolution,
                            self.config.image_channels))
        labels = ops.zeros((batch_size,), "int32") if self.config.num_classes else None
        self(images, labels)
        return self
