"""`TupleTokenizer`: the components of a Tuple observation as tokens."""

import keras
from keras import ops

from attn_agents.discrete_tokenizer import DiscreteTokenizer

KINDS = ("discrete", "vector")


class TupleTokenizer(keras.layers.Layer):
    """Turns a Tuple observation into tokens, component by component, in order.

    - `discrete` components (a Discrete, int [B], or a MultiDiscrete, int [B, C]): one token
      per integer, from a `DiscreteTokenizer` of their own.
    - `vector` components (a rank-1 Box, float [B, F]): one token, a linear projection of
      their own (whose bias tells the component apart).

    T = the sum of the components' token counts.

    Example:
    >>> tok = TupleTokenizer([{"kind": "discrete", "nvec": [2]},
    ...                       {"kind": "vector", "size": 3}], d_model=8)
    >>> tokens, mask = tok((ops.zeros((4,), "int64"), ops.zeros((4, 3))))
    >>> tuple(tokens.shape), tuple(mask.shape)
    ((4, 2, 8), (4, 2))

    Args:
        components: One dict per Tuple component: `{"kind": "discrete", "nvec": [...],
            "start": [...] (optional)}` or `{"kind": "vector", "size": F}`.
        d_model: D.

    Call arguments:
        inputs: A tuple (or list) of the components' batches, in order.

    Returns:
        `(tokens, mask)`: [B, T, D] and bool [B, T] (all True).

    Raises:
        ValueError: If there are no components or a kind is unknown.
    """

    def __init__(self, components, d_model, **kwargs):
        super().__init__(**kwargs)
        if not components or any(c.get("kind") not in KINDS for c in components):
            raise ValueError(f"Expected components of the kinds {KINDS}. "
                             f"Received: components={components!r}")
        self.components = [dict(c) for c in components]
        self.d_model = int(d_model)
        self.embedders = []
        for i, component in enumerate(self.components):
            if component["kind"] == "discrete":
                layer = DiscreteTokenizer(component["nvec"], d_model, component.get("start"),
                                          name=f"discrete_{i}", dtype=self.dtype_policy)
            else:
                layer = keras.layers.Dense(d_model, name=f"project_{i}",
                                           dtype=self.dtype_policy)
                layer.build((None, component["size"]))
            self.embedders.append(layer)

    def call(self, inputs):
        tokens = []
        for component, embed, x in zip(self.components, self.embedders, inputs, strict=True):
            if component["kind"] == "discrete":
                tokens.append(embed(x)[0])  # [B, C, D]
            else:
                tokens.append(embed(ops.cast(x, self.compute_dtype))[:, None, :])  # [B, 1, D]
        tokens = ops.concatenate(tokens, axis=1)  # [B, T, D]
        return tokens, ops.ones(ops.shape(tokens)[:2], dtype="bool")

    def get_config(self):
        return super().get_config() | {"components": self.components, "d_model": self.d_model}
