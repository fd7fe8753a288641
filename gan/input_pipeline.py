"""The tf.data input pipeline of real images."""

import numpy as np
import tensorflow as tf


def to_unit_range(images):
    """uint8 [..., R, R, C] → float32 in [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 shuffle_buffer: int = 20000) -> tf.data.Dataset:
    """An endless, shuffled stream of batches of real images.

    cache (the uint8 arrays) → shuffle (seeded, reshuffled every epoch) → repeat → batch
    (remainder dropped) → scale to [-1, 1] → prefetch.

    Letters: N images, B batch, R resolution, C channels.

    Args:
        images: uint8 [N, R, R, C].
        labels: int32 [N].
        batch_size: the global batch B.
        seed: the shuffle seed.
        shuffle_buffer: shuffle buffer size (capped at N).

    Returns:
        A dataset of (float32 [B, R, R, C] in [-1, 1], int32 [B]).
    """
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32))).cache()
    dataset = dataset.shuffle(min(shuffle_buffer, len(images)), seed=seed,
                              reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda x, y: (to_unit_range(x), y),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
