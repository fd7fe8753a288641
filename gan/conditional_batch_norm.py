"""`ConditionalBatchNorm`: batch normalization with class-dependent gain and bias."""

import keras
from keras import ops

from gan.spectral_norm import read_float32


@keras.saving.register_keras_serializable(package="gan")
class ConditionalBatchNorm(keras.layers.Layer):
    """Batch normalization whose scale and offset are looked up from the class label.

    The batch statistics, the moving statistics and the normalization are computed in
    float32 whatever the compute dtype (so float16 never holds a variance); the result is
    cast back to the compute dtype. The batch statistics are those of the global batch:
    inside a `tf.distribute` strategy, the per-channel sums of x and x² (and the counts)
    are all-reduced over every replica (`keras.ops.moments(..., synchronized=True)`; the
    gradient flows through the all-reduce), so that a step on R replicas of B/R examples
    normalizes like a step on one replica of B, and every replica computes the same
    update of the moving statistics (kept from the first replica). The per-class gain
    starts at 1 and the bias at 0 (de Vries et al. 2017; Miyato & Koyama 2018). With
    `num_classes=0` it is plain batch normalization with one learned gain and bias.

    Letters: B batch, H height, W width, C channels.

    Example:

    >>> bn = ConditionalBatchNorm(num_classes=10)
    >>> bn(keras.ops.ones((2, 4, 4, 8)), keras.ops.array([1, 3]), training=True).shape
    (2, 4, 4, 8)

    Args:
        num_classes: classes of the label (0: unconditional).
        momentum: of the moving mean and variance.
        epsilon: added to the variance.
        **kwargs: passed to `keras.layers.Layer`.

    Call arguments:
        inputs: [B, H, W, C].
        labels: int [B], required when `num_classes > 0`, ignored otherwise.
        training: use (and update) the batch statistics instead of the moving ones.

    Returns:
        [B, H, W, C] in the compute dtype.

    Raises:
        ValueError: for a negative `num_classes`, a momentum outside [0, 1) or missing labels.
    """

    def __init__(self, num_classes=0, momentum=0.99, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(
                f"Expected `num_classes` to be a non-negative integer. "
                f"Received: num_classes={num_classes}"
            )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Expected `momentum` in [0, 1). Received: momentum={momentum}")
        self.num_classes = num_classes
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, inputs_shape, labels_shape=None):
        channels = inputs_shape[-1]
        rows = max(self.num_classes, 1)
        self.gain = self.add_weight(name="gain", shape=(rows, channels), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(rows, channels), initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(channels,), initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(channels,), initializer="ones", trainable=False,
            aggregation="only_first_replica",
        )
        self.built = True

    def call(self, inputs, labels=None, training=False):
        x = ops.cast(inputs, "float32")
        if training:
            # [C] each; a collective op under a strategy: every replica must get here.
            mean, variance = ops.moments(x, axes=(0, 1, 2), synchronized=True)
            m = self.momentum
            self.moving_mean.assign(m * read_float32(self.moving_mean) + (1.0 - m) * mean)
            self.moving_variance.assign(
                m * read_float32(self.moving_variance) + (1.0 - m) * variance
            )
        else:
            mean = read_float32(self.moving_mean)
            variance = read_float32(self.moving_variance)
        x = (x - mean) * ops.rsqrt(variance + self.epsilon)
        gain, bias = read_float32(self.gain), read_float32(self.bias)
        if self.num_classes:
            if labels is None:
                raise ValueError(
                    "Expected `labels` for a conditional batch norm. Received: labels=None"
                )
            labels = ops.cast(labels, "int32")
            gain = ops.take(gain, labels, axis=0)[:, None, None, :]  # [B, 1, 1, C]
            bias = ops.take(bias, labels, axis=0)[:, None, None, :]
        else:
            gain, bias = gain[0], bias[0]
        return ops.cast(x * gain + bias, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, labels_shape=None):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, momentum=self.momentum,
                      epsilon=self.epsilon)
        return config
