"""The tf.data input pipeline: length filter, token-budget bucketed batches, ordered eval batches.

A training batch is a dict of int32 tensors, 0-padded (PAD):

    source      [B, S]  src + [EOS]
    decoder_in  [B, T]  [BOS] + tgt
    target      [B, T]  tgt + [EOS]
    alignment   [B, T, S] float32, only with gold alignments: row t is the gold distribution
                of target token t over the source tokens (1/k on each of its k linked source
                tokens; EOS on EOS; all 0 for a token without link and for padding)

Batches hold sentences of similar length (`tf.data.Dataset.bucket_by_sequence_length`), and
their sizes follow a token budget: a bucket whose longest sequence has L tokens gets
max(1, tokens_per_batch // L) sentences, so B * max(S, T) <= tokens_per_batch for every batch
of more than one sentence.

Batches are global: under a `tf.distribute` strategy with R replicas every worker builds the
same batches (same seed) and `split_batches` gives each replica its own rows of each one
(`smallest_batch` says whether every replica gets at least one sentence).
"""

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from translate.corpus import check_count
from translate.tokenizer import BOS, EOS, PAD

DEFAULT_BUCKET_WIDTH = 5
KEYS = ("source", "decoder_in", "target")


def _check_same_length(src_ids: Sequence, tgt_ids: Sequence) -> None:
    if len(src_ids) != len(tgt_ids):
        raise ValueError(
            "Expected as many source as target sentences. "
            f"Received: len(src_ids)={len(src_ids)}, len(tgt_ids)={len(tgt_ids)}"
        )


def filter_max_length(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    max_length: int | None,
) -> tuple[list, list, int]:
    """Drops the pairs with a side longer than `max_length` tokens once EOS is added.

    Args:
        src_ids: Source token ids a sentence (no EOS).
        tgt_ids: Target token ids a sentence (no BOS/EOS), as many.
        max_length: The most tokens a side may have, EOS included; None keeps all.

    Returns:
        (kept source ids, kept target ids, number of pairs dropped), in the original order.

    Raises:
        ValueError: If the lists differ in length or `max_length` is not a positive integer.
    """
    kept = kept_by_length(src_ids, tgt_ids, max_length)
    return ([src_ids[i] for i in kept], [tgt_ids[i] for i in kept], len(src_ids) - len(kept))


def kept_by_length(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    max_length: int | None,
) -> list[int]:
    """The indices of the pairs `filter_max_length` keeps, in order (to filter what goes
    with the pairs, such as their gold alignments).

    Raises:
        ValueError: As for `filter_max_length`.
    """
    _check_same_length(src_ids, tgt_ids)
    if max_length is None:
        return list(range(len(src_ids)))
    max_length = check_count("max_length", max_length, minimum=1)
    return [i for i, (src, tgt) in enumerate(zip(src_ids, tgt_ids, strict=True))
            if len(src) < max_length and len(tgt) < max_length]


def _ragged(rows: Sequence[Sequence[int]]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32, count=lengths.sum())
    return tf.RaggedTensor.from_row_lengths(values, lengths)


def bucket_plan(max_length: int, tokens_per_batch: int, bucket_width: int):
    """The buckets `make_dataset` uses for sequences of up to `max_length` tokens.

    Args:
        max_length: The longest sequence, EOS/BOS included.
        tokens_per_batch: The token budget of a batch.
        bucket_width: The length range of a bucket.

    Returns:
        (boundaries, batch_sizes) for `tf.data.Dataset.bucket_by_sequence_length`: bucket i
        holds lengths in [boundaries[i-1], boundaries[i]) and batches of batch_sizes[i]; the
        last boundary is max_length + 1, so the extra last bucket stays empty.
    """
    boundaries = list(range(bucket_width + 1, max_length + 1, bucket_width)) + [max_length + 1]
    batch_sizes = [max(1, tokens_per_batch // (b - 1)) for b in boundaries] + [1]
    return boundaries, batch_sizes


def _plan(src_ids, tgt_ids, tokens_per_batch, bucket_width):
    """Checks `make_dataset`'s arguments: (boundaries, batch_sizes, longest sequence)."""
    _check_same_length(src_ids, tgt_ids)
    if not len(src_ids):
        raise ValueError("Expected at least one sentence pair. Received: len(src_ids)=0")
    tokens_per_batch = check_count("tokens_per_batch", tokens_per_batch, minimum=1)
    bucket_width = check_count("bucket_width", bucket_width, minimum=1)
    longest = 1 + max(max(len(s) for s in src_ids), max(len(t) for t in tgt_ids))
    return (*bucket_plan(longest, tokens_per_batch, bucket_width), longest)


def smallest_batch(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    tokens_per_batch: int,
    bucket_width: int = DEFAULT_BUCKET_WIDTH,
) -> tuple[int, int]:
    """The fewest sentences a full batch of `make_dataset` holds, and the length it is for.

    Args:
        src_ids, tgt_ids, tokens_per_batch, bucket_width: as for `make_dataset`.

    Returns:
        (sentences, tokens): the batches of the longest pairs (`tokens` long, EOS/BOS
        included) hold `sentences`; every other full batch holds at least as many. With
        `repeat=True` every batch is full.

    Raises:
        ValueError: If the lists differ in length or are empty, or a size is not a positive
            integer.
    """
    _, batch_sizes, longest = _plan(src_ids, tgt_ids, tokens_per_batch, bucket_width)
    return min(batch_sizes[:-1]), longest


def make_dataset(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    tokens_per_batch: int,
    shuffle: bool,
    seed: int = 0,
    repeat: bool = False,
    bucket_width: int = DEFAULT_BUCKET_WIDTH,
    alignments: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> tf.data.Dataset:
    """Makes the training dataset: bucketed, token-budgeted, padded batches.

    Args:
        src_ids: Source token ids a sentence (no EOS).
        tgt_ids: Target token ids a sentence (no BOS/EOS), as many.
        tokens_per_batch: The token budget: B * max(S, T) <= tokens_per_batch unless B == 1.
        shuffle: Shuffle the sentences (the whole set, anew each pass) before bucketing.
        seed: Seeds the shuffle.
        repeat: Repeat forever (the buckets then run on across passes).
        bucket_width: The length range of a bucket, in tokens.
        alignments: Optional gold links of each pair: (source token, target token)
            positions, 0-based, EOS left out (it is linked to the source EOS here). Adds
            "alignment" to the batches (see the module docstring).

    Returns:
        A `tf.data.Dataset` of dicts with "source" [B, S], "decoder_in" [B, T] and "target"
        [B, T], int32, padded with PAD (0) (and "alignment" [B, T, S] float32, padded with
        0), prefetched.

    Raises:
        ValueError: If the lists differ in length or are empty, a size is not a positive
            integer, or `alignments` does not hold a list of links for every pair.
    """
    boundaries, batch_sizes, _ = _plan(src_ids, tgt_ids, tokens_per_batch, bucket_width)
    columns = (_ragged(src_ids), _ragged(tgt_ids))
    if alignments is not None:
        if len(alignments) != len(src_ids):
            raise ValueError("Expected the links of every pair. Received: "
                             f"len(alignments)={len(alignments)}, len(src_ids)={len(src_ids)}")
        columns += (_ragged([[x for link in links for x in link] for links in alignments]),)

    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        dataset = dataset.shuffle(len(src_ids), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    eos = tf.constant([EOS], tf.int32)
    bos = tf.constant([BOS], tf.int32)

    def to_example(src, tgt, links=None):
        example = {
            "source": tf.concat([src, eos], 0),
            "decoder_in": tf.concat([bos, tgt], 0),
            "target": tf.concat([tgt, eos], 0),
        }
        if links is not None:
            example["alignment"] = gold_matrix(links, tf.size(src), tf.size(tgt))
        return example

    def length(example):
        return tf.maximum(tf.shape(example["source"])[0], tf.shape(example["target"])[0])

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=batch_sizes,
        padding_values={key: tf.constant(PAD, tf.int32) for key in KEYS}
        | ({"alignment": tf.constant(0.0)} if alignments is not None else {}),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def gold_matrix(links, source_length, target_length):
    """The gold attention of one pair, float32 [T + 1, S + 1] (EOS included; see the module
    docstring), from its links int32 [2 * n] (flat (source, target) positions)."""
    pairs = tf.reshape(links, [-1, 2])
    eos = tf.stack([source_length, target_length])[None]  # EOS on EOS
    pairs = tf.concat([pairs, eos], 0)
    indices = tf.stack([pairs[:, 1], pairs[:, 0]], axis=1)  # (target, source)
    shape = tf.stack([target_length + 1, source_length + 1])
    dense = tf.scatter_nd(indices, tf.ones([tf.shape(indices)[0]]), shape)
    dense = tf.minimum(dense, 1.0)  # a repeated link counts once
    return tf.math.divide_no_nan(dense, tf.reduce_sum(dense, axis=1, keepdims=True))


def split_batches(
    dataset: tf.data.Dataset, num_parts: int, first: int = 0, count: int = 1
) -> tf.data.Dataset:
    """Cuts every batch of `dataset` into `num_parts` parts by rows; keeps parts
    `first` .. `first + count - 1`, one element each, in that order.

    Part i of a batch of B sentences is rows [i * B // num_parts, (i + 1) * B // num_parts):
    the parts of all the replicas are the batch, every sentence exactly once, and their sizes
    differ by at most one (a part is empty when B < num_parts). The padded width stays the
    batch's. For `tf.distribute.Strategy.distribute_datasets_from_function`: the input
    pipeline of a worker keeps the parts of its `count` replicas, which take consecutive
    elements.

    Args:
        dataset: Elements are dicts of [B, ...] tensors (e.g. `make_dataset`'s).
        num_parts: The replicas in sync (all workers).
        first: The first part this input pipeline keeps.
        count: The parts it keeps (its local replicas).

    Returns:
        A `tf.data.Dataset` of the same dicts with [B_i, ...] tensors, `count` elements for
        each batch of `dataset` (`dataset` itself when `num_parts == 1`).

    Raises:
        ValueError: Unless 0 <= first < first + count <= num_parts (integers).
    """
    num_parts = check_count("num_parts", num_parts, minimum=1)
    count = check_count("count", count, minimum=1)
    first = check_count("first", first, minimum=0)
    if first + count > num_parts:
        raise ValueError(
            f"Expected first + count <= num_parts. Received: first={first}, "
            f"count={count}, num_parts={num_parts}"
        )
    if num_parts == 1:
        return dataset

    def parts(batch):
        rows = tf.shape(next(iter(batch.values())))[0]
        bounds = tf.range(first, first + count + 1) * rows // num_parts  # [count + 1]
        return tf.data.Dataset.from_tensor_slices((bounds[:-1], bounds[1:])).map(
            lambda start, stop: {key: value[start:stop] for key, value in batch.items()})

    return dataset.flat_map(parts).prefetch(tf.data.AUTOTUNE)


class EvalBatch(NamedTuple):
    """A batch of sources to decode.

    Attributes:
        indices: int64 [B]: the positions of the sentences in the list given.
        source: int32 [B, S]: the sentences + EOS, padded with PAD (0).
    """

    indices: np.ndarray
    source: np.ndarray


def make_eval_batches(
    src_ids: Sequence[Sequence[int]], batch_size: int, sort_by_length: bool = False
) -> list[EvalBatch]:
    """Cuts source sentences into padded batches for decoding a dev or test set.

    Args:
        src_ids: Source token ids a sentence (no EOS).
        batch_size: Sentences a batch (the last may have fewer).
        sort_by_length: Batch sentences of similar length together (less padding); the
            `indices` still say where each belongs. By default batches follow the given order.

    Returns:
        A list of `EvalBatch`; their `indices`, concatenated, are a permutation of
        range(len(src_ids)) (in order unless `sort_by_length`).

    Raises:
        ValueError: If `batch_size` is not a positive integer.
    """
    batch_size = check_count("batch_size", batch_size, minimum=1)
    order = np.arange(len(src_ids), dtype=np.int64)
    if sort_by_length:
        order = np.argsort([len(s) for s in src_ids], kind="stable").astype(np.int64)
    batches = []
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        width = 1 + max(len(src_ids[i]) for i in indices)
        source = np.full((len(indices), width), PAD, np.int32)
        for row, i in enumerate(indices):
            source[row, : len(src_ids[i])] = src_ids[i]
            source[row, len(src_ids[i])] = EOS
        batches.append(EvalBatch(indices=indices, source=source))
    return batches
