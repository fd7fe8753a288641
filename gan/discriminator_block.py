"""`DiscriminatorBlock`: the ResNet down-block of the SAGAN/SNGAN discriminator."""

import keras
from keras import ops

from gan.generator_block import sn_conv


def downsample(x):
    """2×2 average pooling: [B, H, W, C] -> [B, H/2, W/2, C]."""
    return ops.average_pool(x, 2, strides=2)


@keras.saving.register_keras_serializable(package="gan")
class DiscriminatorBlock(keras.layers.Layer):
    """(ReLU)-conv3×3-ReLU-conv3×3-(avgpool), plus a 1×1-conv shortcut (Miyato et al. 2018).

    The first block of D (`first=True`) sees the image: it has no leading ReLU and its
    shortcut pools before the 1×1 conv.

    Letters: B batch, H height, W width, C input channels, F filters.

    Args:
        filters: output channels F.
        down: halve H and W.
        first: the block that sees the image.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: [B, H, W, C].
        training: spectral-norm updates.

    Returns:
        [B, H/2, W/2, F] when `down`, else [B, H, W, F].
    """

    def __init__(self, filters, down=True, first=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.down = down
        self.first = first
        dtype = self.dtype_policy
        self.conv1 = sn_conv(filters, 3, "conv1", dtype)
        self.conv2 = sn_conv(filters, 3, "conv2", dtype)
        self.shortcut = sn_conv(filters, 1, "shortcut", dtype)

    def call(self, inputs, training=False):
        inputs = ops.cast(inputs, self.compute_dtype)
        h = inputs if self.first else ops.relu(inputs)
        h = self.conv1(h, training=training)
        h = self.conv2(ops.relu(h), training=training)
        if self.down:
            h = downsample(h)
        if self.first:
            shortcut = self.shortcut(downsample(inputs), training=training)
        else:
            shortcut = self.shortcut(inputs, training=training)
            if self.down:
                shortcut = downsample(shortcut)
        return h + shortcut

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.down:
            height = None if height is None else height // 2
            width = None if width is None else width // 2
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, down=self.down, first=self.first)
        return config
