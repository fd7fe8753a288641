"""`VectorTokenizer`: one token per feature of a Box vector observation."""

import keras
from keras import ops


class VectorTokenizer(keras.layers.Layer):
    """Turns a feature vector into one token per feature.

    Token `f` is `x_f * value_embedding_f + feature_embedding_f`: the value scales a learned
    per-feature direction, and the feature-id embedding tells the tokens apart.

    Example:
    >>> tokens, mask = VectorTokenizer(num_features=4, d_model=8)(ops.zeros((2, 4)))
    >>> tuple(tokens.shape), tuple(mask.shape)
    ((2, 4, 8), (2, 4))

    Args:
        num_features: F, the length of the observation vector.
        d_model: D, the token width.

    Call arguments:
        inputs: float [B, F].

    Returns:
        `(tokens, mask)`: [B, F, D] and bool [B, F] (all True).

    Raises:
        ValueError: If `num_features` or `d_model` is not positive.
    """

    def __init__(self, num_features, d_model, **kwargs):
        super().__init__(**kwargs)
        if num_features < 1 or d_model < 1:
            raise ValueError("Expected positive `num_features` and `d_model`. Received: "
                             f"num_features={num_features}, d_model={d_model}")
        self.num_features = num_features
        self.d_model = d_model
        self.value_embedding = self.add_weight(
            shape=(num_features, d_model), initializer="glorot_uniform", name="value_embedding")
        self.feature_embedding = self.add_weight(
            shape=(num_features, d_model), initializer=keras.initializers.RandomNormal(0, 0.02),
            name="feature_embedding")

    def call(self, inputs):
        x, directions, offsets = self.factors(inputs)
        tokens = x[..., None] * directions + offsets  # [B, F, D]
        mask = ops.ones(ops.shape(tokens)[:2], dtype="bool")
        return tokens, mask

    def factors(self, inputs):
        """The tokens' rank-1 form `(x, e, p)`, tokens = `x[..., None] * e + p`.

        `AttentionBlock(..., factors=...)` uses it to skip the first projections' matmul.

        Returns:
            x [B, F], and the value and feature embeddings [F, D], in the compute dtype.
        """
        return (ops.cast(inputs, self.compute_dtype),
                ops.cast(self.value_embedding, self.compute_dtype),
                ops.cast(self.feature_embedding, self.compute_dtype))

    def get_config(self):
        return super().get_config() | {"num_features": self.num_features,
                                       "d_model": self.d_model}
