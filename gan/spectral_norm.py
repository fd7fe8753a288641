"""`SpectralNorm`: a float32-safe spectral normalization wrapper (Miyato et al. 2018)."""

import keras
from keras import ops
from keras.src.backend import AutocastScope  # no public API reads a variable un-autocast

_SUPPORTED = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.Embedding)


def read_float32(variable):
    """Reads a float32 variable as float32, even inside a mixed-precision layer call.

    Inside the call of a layer whose compute dtype is float16 or bfloat16, Keras autocasts
    every variable it reads; this reads the stored value instead.
    """
    with AutocastScope(None):
        return ops.cast(ops.convert_to_tensor(variable.value), "float32")


def _l2_normalize(x, eps):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x)), eps))


@keras.saving.register_keras_serializable(package="gan")
class SpectralNorm(keras.layers.Wrapper):
    """Divides the kernel of a `Conv2D`, `Dense` or `Embedding` by its largest singular value.

    Unlike `keras.layers.SpectralNormalization`, the normalized kernel is computed on every
    call in float32 from the float32 kernel (it is never assigned back to the kernel, so
    nothing is rounded to half precision), and the gradient flows through σ: only the power
    iteration vectors u and v are constants for backpropagation, as in Miyato et al.'s
    reference code. The kernel is viewed as a matrix W [K, N] with N the output units
    (channels; the embedding dimension for `Embedding`) and K the rest.

    The vector u [1, N] is a float32, non-trainable variable updated by the power iteration
    when `training=True`. Its aggregation is `mean`: inside a `tf.distribute` strategy
    every replica computes the update from the same (mirrored) kernel and u, and the
    all-reduced mean is assigned on every replica of every worker: workers whose matrix
    products round differently (other CPUs) still keep the same u, where
    `only_first_replica` would keep each worker's own first replica's. (The mean of R
    equal values is that value, exactly for R = 2, within an ulp otherwise.)

    Example:

    >>> layer = SpectralNorm(keras.layers.Dense(4))
    >>> layer(keras.ops.ones((2, 3)), training=True).shape
    (2, 4)

    Args:
        layer: a `keras.layers.Conv2D`, `Dense` or `Embedding` (built or not).
        power_iterations: power iterations per call (1 in SNGAN and SAGAN).
        epsilon: floor of the squared norm when normalizing u and v.
        **kwargs: passed to `keras.layers.Wrapper`; the dtype policy defaults to the
            wrapped layer's.

    Call arguments:
        inputs: the wrapped layer's input, e.g. [B, H, W, C] for `Conv2D`, [B, C] for
            `Dense`, int [B] for `Embedding`.
        training: whether to update u.

    Returns:
        The wrapped layer's output computed with W/σ, in the compute dtype.

    Raises:
        ValueError: for an unsupported layer or a non-positive `power_iterations`.
    """

    def __init__(self, layer, power_iterations=1, epsilon=1e-12, **kwargs):
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        if not isinstance(layer, _SUPPORTED):
            raise ValueError(
                "Expected a keras.layers.Conv2D, Dense or Embedding layer. "
                f"Received: layer={type(layer).__name__}"
            )
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) or (
                power_iterations < 1):
            raise ValueError(
                "Expected `power_iterations` to be a positive integer. "
                f"Received: power_iterations={power_iterations}"
            )
        self.power_iterations = power_iterations
        self.epsilon = epsilon

    @property
    def kernel(self):
        """The wrapped layer's float32 kernel variable (the embeddings for `Embedding`)."""
        if isinstance(self.layer, keras.layers.Embedding):
            return self.layer.embeddings
        return self.layer.kernel

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        units = self.kernel.shape[-1]
        self.u = self.add_weight(
            name="u", shape=(1, units), dtype="float32", trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            aggregation="mean",
        )
        self.built = True

    def normalized_kernel(self, training=False):
        """Returns (W/σ with the kernel's shape, σ), both float32; updates u when training."""
        kernel = read_float32(self.kernel)  # never rounded to half precision
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # [K, N]
        u = read_float32(self.u)  # [1, N]
        v = None
        for _ in range(self.power_iterations):
            v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)), self.epsilon)  # [1, K]
            u = _l2_normalize(ops.matmul(v, matrix), self.epsilon)  # [1, N]
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        sigma = ops.sum(ops.matmul(v, matrix) * u)  # σ ≈ vᵀ W u, differentiable in W
        if training:
            self.u.assign(u)  # an all-reduce under a strategy: every replica must get here
        return kernel / sigma, sigma

    def call(self, inputs, training=False):
        kernel, _ = self.normalized_kernel(training=bool(training))
        kernel = ops.cast(kernel, self.compute_dtype)
        layer = self.layer
        if isinstance(layer, keras.layers.Embedding):
            return ops.take(kernel, ops.cast(inputs, "int32"), axis=0)
        inputs = ops.cast(inputs, self.compute_dtype)
        if isinstance(layer, keras.layers.Dense):
            outputs = ops.matmul(inputs, kernel)
        else:
            outputs = ops.conv(
                inputs, kernel, strides=layer.strides, padding=layer.padding,
                data_format=layer.data_format, dilation_rate=layer.dilation_rate,
            )
        if layer.use_bias:
            outputs = outputs + ops.cast(read_float32(layer.bias), self.compute_dtype)
        if layer.activation is not None:
            outputs = layer.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(power_iterations=self.power_iterations, epsilon=self.epsilon)
        return config
