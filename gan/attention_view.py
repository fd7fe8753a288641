"""A generated image's self-attention as the attention dashboard shows it: the image, and for
the query position the user clicks, that position's attention map laid over it."""

import math

import numpy as np

from attn_core.attention_record import MAX_WEIGHTS


def generator_view(image, attention, max_weights: int = MAX_WEIGHTS) -> dict:
    """The keyword arguments of `attn_core.attention_record.make_record` (after its name) and
    of `SummaryWriter.attention` (after its tag and step) for one generated image.

    Queries and keys are both the side×side positions of the attention block's feature map
    (its resolution, `g_attention_res`). SAGAN max-pools keys 2×2, so each of the P' = P/4
    pooled keys stands for a 2×2 block of positions: its weight is shared evenly between
    them, which keeps every query's row a distribution over the same grid as the queries.
    A map too large for one record (P² > `max_weights`: a 64×64 map) is coarsened 2×2 until
    it fits: a coarse query's row is the mean of its four queries' rows, a coarse key's
    weight the sum of its four keys' weights (rows stay distributions).

    Letters: R image side, C channels (1 or 3), P = side² queries, P' keys (P/4 or P).

    Args:
        image: float [R, R, C] in [-1, 1], as the generator returns it.
        attention: [P, P'] that image's attention map (`Generator(...,
            return_attention_scores=True)`'s, for one image).
        max_weights: The most weights a record may hold (`attention_record.MAX_WEIGHTS`).

    Returns:
        `{"weights", "query_labels", "key_labels", "view", "image", "key_grid"}`: float32
        [P, P], the positions "(row,col)" as query and key labels (row-major), the "image"
        view, the image as uint8 [R, R, 3], and `key_grid` = (side, side) (P and side those
        of the coarsened map, if it was).

    Raises:
        ValueError: If the shapes are not those of a square map and image.
    """
    image = np.asarray(image, np.float32)
    attention = np.asarray(attention, np.float32)
    side = math.isqrt(attention.shape[0]) if attention.ndim == 2 else 0
    key_side = math.isqrt(attention.shape[1]) if attention.ndim == 2 else 0
    if (image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[-1] not in (1, 3)
            or not side or side * side != attention.shape[0]
            or key_side * key_side != attention.shape[1] or side % key_side):
        raise ValueError("Expected an image [R, R, 1 or 3] and its attention [P, P'] (P and "
                         "P' squares, P' dividing the side of P). Received: shapes "
                         f"{image.shape} and {attention.shape}")
    factor = side // key_side
    keys = attention.reshape(side * side, key_side, key_side)
    weights = np.repeat(np.repeat(keys, factor, axis=1), factor, axis=2) / (factor * factor)
    while side**4 > max_weights and side % 2 == 0:
        half = side // 2
        weights = weights.reshape(half, 2, half, 2, side * side).mean(axis=(1, 3))
        weights = weights.reshape(half * half, half, 2, half, 2).sum(axis=(2, 4))
        side = half
    pixels = np.clip(np.rint((image * 0.5 + 0.5) * 255.0), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    labels = [f"({r},{c})" for r in range(side) for c in range(side)]
    return {"weights": weights.reshape(side * side, side * side), "query_labels": labels,
            "key_labels": labels, "view": "image", "image": pixels, "key_grid": (side, side)}
