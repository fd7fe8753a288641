"""`MiniGridTokenizer`: one token per cell of MiniGrid's egocentric view, plus the direction."""

import keras
from keras import ops

NUM_OBJECTS = 16  # minigrid's OBJECT_TO_IDX has 11 entries; room to spare
NUM_COLORS = 8  # 6 colours
NUM_STATES = 4  # open, closed, locked


class MiniGridTokenizer(keras.layers.Layer):
    """Embeds MiniGrid's `image` (object, colour, state per cell) and `direction`.

    Cell token = object + colour + state embeddings + row and column embeddings. Cells the
    agent cannot see (object index 0, "unseen") are masked out. One more token, last, holds
    the agent's direction. T = h * w + 1.

    Example:
    >>> tokens, mask = MiniGridTokenizer((7, 7), d_model=8)(
    ...     {"image": ops.ones((2, 7, 7, 3), "uint8"), "direction": ops.zeros((2,), "int64")})
    >>> tuple(tokens.shape), tuple(mask.shape)
    ((2, 50, 8), (2, 50))

    Args:
        grid_shape: (h, w) of the view.
        d_model: D.

    Call arguments:
        inputs: dict with `image` int [B, h, w, 3] and `direction` int [B].

    Returns:
        `(tokens, mask)`: [B, T, D] and bool [B, T], False for unseen cells.
    """

    def __init__(self, grid_shape, d_model, **kwargs):
        super().__init__(**kwargs)
        self.grid_shape = tuple(int(s) for s in grid_shape)
        self.d_model = int(d_model)
        init = keras.initializers.RandomNormal(0, 0.02)
        h, w = self.grid_shape
        self.object_embedding = self.add_weight(shape=(NUM_OBJECTS, d_model), initializer=init,
                                                name="object_embedding")
        self.color_embedding = self.add_weight(shape=(NUM_COLORS, d_model), initializer=init,
                                               name="color_embedding")
        self.state_embedding = self.add_weight(shape=(NUM_STATES, d_model), initializer=init,
                                               name="state_embedding")
        self.row_embedding = self.add_weight(shape=(h, d_model), initializer=init,
                                             name="row_embedding")
        self.col_embedding = self.add_weight(shape=(w, d_model), initializer=init,
                                             name="col_embedding")
        self.direction_embedding = self.add_weight(shape=(4, d_model), initializer=init,
                                                   name="direction_embedding")

    def call(self, inputs):
        h, w = self.grid_shape
        image = ops.cast(inputs["image"], "int32")  # [B, h, w, 3]
        objects = ops.clip(image[..., 0], 0, NUM_OBJECTS - 1)
        cells = (ops.take(self.object_embedding, objects, axis=0)
                 + ops.take(self.color_embedding, ops.clip(image[..., 1], 0, NUM_COLORS - 1),
                            axis=0)
                 + ops.take(self.state_embedding, ops.clip(image[..., 2], 0, NUM_STATES - 1),
                            axis=0)
                 + self.row_embedding[:, None, :] + self.col_embedding[None, :, :])
        cells = ops.reshape(cells, (-1, h * w, self.d_model))  # [B, h*w, D]
        direction = ops.clip(ops.cast(inputs["direction"], "int32"), 0, 3)
        direction = ops.take(self.direction_embedding, ops.reshape(direction, (-1,)), axis=0)
        tokens = ops.concatenate([cells, direction[:, None, :]], axis=1)  # [B, T, D]
        seen = ops.reshape(ops.not_equal(objects, 0), (-1, h * w))
        mask = ops.concatenate([seen, ops.ones_like(seen[:, :1])], axis=1)  # [B, T]
        return ops.cast(tokens, self.compute_dtype), mask

    def get_config(self):
        return super().get_config() | {"grid_shape": self.grid_shape, "d_model": self.d_model}
