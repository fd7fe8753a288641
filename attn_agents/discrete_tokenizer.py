"""`DiscreteTokenizer`: one token per component of a Discrete or MultiDiscrete observation."""

import keras
import numpy as np
from keras import ops


class DiscreteTokenizer(keras.layers.Layer):
    """Embeds each of C integer components as a token.

    Token `c` is `value_embedding_c[x_c] + component_embedding_c`: every component has its
    own table of `nvec[c]` learned embeddings (rows `offset_c ... offset_c + nvec[c] - 1` of
    one shared matrix), and the component embedding tells components with the same value
    apart. A Discrete(n) observation is the case C = 1. Values are shifted by `start` and
    clipped into range.

    Example:
    >>> tokens, mask = DiscreteTokenizer([2, 5], d_model=8)(ops.zeros((3, 2), "int64"))
    >>> tuple(tokens.shape), tuple(mask.shape)
    ((3, 2, 8), (3, 2))

    Args:
        nvec: The number of values of each component, `[n_1, ..., n_C]`.
        d_model: D.
        start: The smallest value of each component (gymnasium's `start`), default 0.

    Call arguments:
        inputs: int [B, C], or [B] when C = 1 (a Discrete observation).

    Returns:
        `(tokens, mask)`: [B, C, D] and bool [B, C] (all True).

    Raises:
        ValueError: If `nvec` is empty or holds a size below 1, or `start` does not match it.
    """

    def __init__(self, nvec, d_model, start=None, **kwargs):
        super().__init__(**kwargs)
        nvec = [int(n) for n in np.ravel(nvec)]
        start = [0] * len(nvec) if start is None else [int(s) for s in np.ravel(start)]
        if not nvec or min(nvec) < 1 or len(start) != len(nvec):
            raise ValueError("Expected a non-empty `nvec` of positive sizes and one `start` "
                             f"per component. Received: nvec={nvec}, start={start}")
        self.nvec, self.start, self.d_model = nvec, start, int(d_model)
        self.offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.int32)  # [C]
        init = keras.initializers.RandomNormal(0, 0.02)
        self.value_embedding = self.add_weight(shape=(sum(nvec), d_model), initializer=init,
                                               name="value_embedding")  # [sum n_c, D]
        self.component_embedding = self.add_weight(shape=(len(nvec), d_model),
                                                   initializer=init,
                                                   name="component_embedding")  # [C, D]

    def call(self, inputs):
        x = ops.cast(inputs, "int32")
        if len(x.shape) == 1:
            x = x[:, None]  # [B, 1]
        x = ops.clip(x - np.asarray(self.start, np.int32),
                     0, np.asarray(self.nvec, np.int32) - 1)  # [B, C]
        tokens = (ops.take(self.value_embedding, x + self.offsets, axis=0)
                  + self.component_embedding)  # [B, C, D]
        mask = ops.ones(ops.shape(tokens)[:2], dtype="bool")
        return ops.cast(tokens, self.compute_dtype), mask

    def get_config(self):
        return super().get_config() | {"nvec": self.nvec, "d_model": self.d_model,
                                       "start": self.start}
