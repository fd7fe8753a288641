"""`GRUGate`: GTrXL's gated residual connection (Parisotto et al. 2020, "Stabilizing
Transformers for Reinforcement Learning")."""

import keras
from keras import ops

# GTrXL's initial update-gate bias b_g: z = sigmoid(... - b_g) starts near sigmoid(-2) = 0.12,
# so a gated block starts close to the identity on its residual stream (the paper and
# RLlib's attention net use 2).
GATE_BIAS = 2.0


class GRUGate(keras.layers.Layer):
    """Merges a residual stream x with a sublayer's output y like a GRU cell.

    `r = sigmoid(W_r y + U_r x)`, `z = sigmoid(W_z y + U_z x - b_g)`,
    `h = tanh(W_g y + U_g (r * x))`, output `(1 - z) * x + z * h`: where a plain residual
    connection adds `x + y`, the gate chooses per feature how much of the stream to keep.
    With `b_g > 0` the update gate z starts small, so the output starts near x.

    Example:
    >>> gate = GRUGate(8)
    >>> tuple(gate(ops.ones((2, 8)), ops.zeros((2, 8))).shape)
    (2, 8)

    Args:
        d_model: D, the width of x and y.
        bias: The initial b_g.

    Call arguments:
        x: [..., D], the residual stream.
        y: [..., D], the sublayer's output (GTrXL passes it through a ReLU first).

    Returns:
        [..., D].
    """

    def __init__(self, d_model, bias=GATE_BIAS, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.bias = int(d_model), float(bias)
        # W_r, W_z, W_g in one matmul of y; U_r, U_z in one of x; U_g after the reset gate.
        self.from_y = keras.layers.Dense(3 * d_model, use_bias=False, name="from_y",
                                         dtype=self.dtype_policy)
        self.from_x = keras.layers.Dense(2 * d_model, use_bias=False, name="from_x",
                                         dtype=self.dtype_policy)
        self.candidate = keras.layers.Dense(d_model, use_bias=False, name="candidate",
                                            dtype=self.dtype_policy)

    def build(self, x_shape, y_shape=None):
        shape = (None, self.d_model)
        self.from_y.build(shape)
        self.from_x.build(shape)
        self.candidate.build(shape)
        self.gate_bias = self.add_weight(
            shape=(self.d_model,), name="gate_bias",
            initializer=keras.initializers.Constant(self.bias))  # [D], b_g

    def call(self, x, y):
        wr, wz, wg = ops.split(self.from_y(y), 3, axis=-1)
        ur, uz = ops.split(self.from_x(x), 2, axis=-1)
        r = ops.sigmoid(wr + ur)
        z = ops.sigmoid(wz + uz - ops.cast(self.gate_bias, self.compute_dtype))
        h = ops.tanh(wg + self.candidate(r * x))
        return (1.0 - z) * x + z * h

    def get_config(self):
        return super().get_config() | {"d_model": self.d_model, "bias": self.bias}
