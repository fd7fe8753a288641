"""`GeneratorBlock`: the ResNet up-block of the SAGAN/SNGAN generator."""

import keras
from keras import ops

from gan.conditional_batch_norm import ConditionalBatchNorm
from gan.spectral_norm import SpectralNorm


def sn_conv(filters, kernel_size, name, dtype=None):
    """A spectrally normalized, orthogonally initialised, 'same'-padded Conv2D."""
    return SpectralNorm(
        keras.layers.Conv2D(filters, kernel_size, padding="same",
                            kernel_initializer="orthogonal", name=name, dtype=dtype),
        name=f"sn_{name}", dtype=dtype,
    )


def upsample(x):
    """Nearest-neighbour 2× upsampling: [B, H, W, C] -> [B, 2H, 2W, C]."""
    return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)


@keras.saving.register_keras_serializable(package="gan")
class GeneratorBlock(keras.layers.Layer):
    """BN-ReLU-up-conv3×3-BN-ReLU-conv3×3, plus an upsampled 1×1-conv shortcut.

    Letters: B batch, H height, W width, C input channels, F filters.

    Args:
        filters: output channels F.
        num_classes: > 0 makes both batch norms class-conditional.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: [B, H, W, C].
        labels: int [B] when conditional.
        training: batch statistics and spectral-norm updates.

    Returns:
        [B, 2H, 2W, F].
    """

    def __init__(self, filters, num_classes=0, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_classes = num_classes
        dtype = self.dtype_policy
        self.bn1 = ConditionalBatchNorm(num_classes, name="bn1", dtype=dtype)
        self.conv1 = sn_conv(filters, 3, "conv1", dtype)
        self.bn2 = ConditionalBatchNorm(num_classes, name="bn2", dtype=dtype)
        self.conv2 = sn_conv(filters, 3, "conv2", dtype)
        self.shortcut = sn_conv(filters, 1, "shortcut", dtype)

    def call(self, inputs, labels=None, training=False):
        h = ops.relu(self.bn1(inputs, labels, training=training))
        h = self.conv1(upsample(h), training=training)  # [B, 2H, 2W, F]
        h = ops.relu(self.bn2(h, labels, training=training))
        h = self.conv2(h, training=training)
        return h + self.shortcut(upsample(inputs), training=training)

    def build(self, inputs_shape, labels_shape=None):
        self.built = True

    def compute_output_shape(self, inputs_shape, labels_shape=None):
        batch, height, width, _ = inputs_shape
        return (batch, None if height is None else 2 * height,
                None if width is None else 2 * width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_classes=self.num_classes)
        return config
