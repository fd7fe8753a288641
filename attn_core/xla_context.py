"""`compiled_by_xla()`: whether the code being traced will run as one XLA computation."""

import keras


def compiled_by_xla():
    """True under the JAX backend, and inside a TensorFlow `tf.function(jit_compile=True)`.

    Layers use it to pick kernels that XLA fuses well but TensorFlow's op-by-op executor
    runs slowly (e.g. broadcast products instead of tiny batched matmuls).

    Returns:
        bool.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend != "tensorflow":
        return False
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    if tf.executing_eagerly():
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
