"""`ImageTokenizer`: non-overlapping patches of an image, with 2-D position embeddings."""

import keras
from keras import ops


class ImageTokenizer(keras.layers.Layer):
    """Cuts an H x W x C image into p x p patches and embeds each as a token.

    The image is zero-padded on the bottom and right to multiples of p, giving an h x w grid
    of patches (h = ceil(H / p), w = ceil(W / p)), T = h * w tokens in row-major order. Each
    token is a linear projection of its flattened patch plus a row and a column embedding.
    uint8 images are scaled to [0, 1].

    Example:
    >>> tokens, mask = ImageTokenizer((96, 96, 3), patch_size=8, d_model=16)(
    ...     ops.zeros((2, 96, 96, 3), "uint8"))
    >>> tuple(tokens.shape)
    (2, 144, 16)

    Args:
        image_shape: (H, W, C).
        patch_size: p.
        d_model: D.
        scale: Multiplier applied to the pixels (1/255 for uint8 images).

    Call arguments:
        inputs: [B, H, W, C] (any numeric dtype).

    Returns:
        `(tokens, mask)`: [B, T, D] and bool [B, T] (all True).

    Raises:
        ValueError: If `image_shape` is not rank 3 or `patch_size` is not positive.
    """

    def __init__(self, image_shape, patch_size, d_model, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        if len(image_shape) != 3 or patch_size < 1:
            raise ValueError("Expected `image_shape` (H, W, C) and a positive `patch_size`. "
                             f"Received: image_shape={image_shape}, patch_size={patch_size}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.patch_size = int(patch_size)
        self.d_model = int(d_model)
        self.scale = float(scale)
        height, width, _ = self.image_shape
        self.grid_shape = (-(-height // patch_size), -(-width // patch_size))
        self.projection = keras.layers.Dense(d_model, name="patch_projection",
                                             dtype=self.dtype_policy)
        self.row_embedding = self.add_weight(
            shape=(self.grid_shape[0], d_model),
            initializer=keras.initializers.RandomNormal(0, 0.02), name="row_embedding")
        self.col_embedding = self.add_weight(
            shape=(self.grid_shape[1], d_model),
            initializer=keras.initializers.RandomNormal(0, 0.02), name="col_embedding")

    def build(self, input_shape):
        p, c = self.patch_size, self.image_shape[2]
        self.projection.build((None, p * p * c))

    def call(self, inputs):
        height, width, channels = self.image_shape
        p = self.patch_size
        h, w = self.grid_shape
        x = ops.cast(inputs, self.compute_dtype) * self.scale  # [B, H, W, C]
        if (h * p, w * p) != (height, width):
            x = ops.pad(x, [[0, 0], [0, h * p - height], [0, w * p - width], [0, 0]])
        x = ops.reshape(x, (-1, h, p, w, p, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, h * w, p * p * channels))  # [B, T, p*p*C]
        position = (self.row_embedding[:, None, :] + self.col_embedding[None, :, :])
        tokens = self.projection(x) + ops.reshape(position, (h * w, self.d_model))  # [B, T, D]
        mask = ops.ones(ops.shape(tokens)[:2], dtype="bool")
        return tokens, mask

    def get_config(self):
        return super().get_config() | {"image_shape": self.image_shape,
                                       "patch_size": self.patch_size, "d_model": self.d_model,
                                       "scale": self.scale}
