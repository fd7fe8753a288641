"""Tests for translate.input_pipeline: length filter, bucketed batches, eval batches."""

import time

import numpy as np
import pytest
import tensorflow as tf

from translate.input_pipeline import (
    bucket_plan,
    filter_max_length,
    kept_by_length,
    make_dataset,
    make_eval_batches,
)
from translate.tokenizer import BOS, EOS, PAD


def _corpus(n=300, seed=0):
    """Random ids >= 4 (no specials), lengths 1..30."""
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, 50, size=rng.integers(1, 31)).tolist() for _ in range(n)]
    tgt = [rng.integers(4, 50, size=rng.integers(1, 31)).tolist() for _ in range(n)]
    return src, tgt


def _batches(dataset):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]


def _unpad(row):
    row = list(row)
    while row and row[-1] == PAD:
        row.pop()
    return row


def test_filter_max_length_counts_eos():
    src = [[5] * 3, [5] * 4, [5] * 2, [5]]
    tgt = [[6] * 3, [6] * 1, [6] * 4, [6] * 5]
    kept_src, kept_tgt, dropped = filter_max_length(src, tgt, max_length=4)
    assert dropped == 3 and kept_src == [[5] * 3] and kept_tgt == [[6] * 3]
    assert filter_max_length(src, tgt, None) == (src, tgt, 0)
    with pytest.raises(ValueError, match="Received: max_length=0"):
        filter_max_length(src, tgt, 0)
    with pytest.raises(ValueError, match="len\\(tgt_ids\\)=1"):
        filter_max_length(src, tgt[:1], 4)
    assert kept_by_length(src, tgt, 4) == [0] and kept_by_length(src, tgt, None) == [0, 1, 2, 3]


def test_gold_alignments_ride_along_as_row_distributions():
    """Each pair's [T, S] gold matrix (EOS included) comes with it, padded with zeros, in
    every batch order; a target token with k links has 1/k on each, the EOS row is on the
    source EOS, a token without link and the padding rows have none."""
    src, tgt = _corpus(60, seed=2)
    rng = np.random.default_rng(1)
    links = [sorted({(int(rng.integers(len(s))), int(rng.integers(len(t))))
                     for _ in range(rng.integers(0, 4))}) for s, t in zip(src, tgt, strict=True)]
    expected = {}
    for s, t, pair_links in zip(src, tgt, links, strict=True):
        gold = np.zeros((len(t) + 1, len(s) + 1), np.float32)
        for i, j in pair_links:
            gold[j, i] = 1.0
        gold[len(t), len(s)] = 1.0
        gold /= np.maximum(gold.sum(axis=1, keepdims=True), 1.0)
        expected[tuple(s)] = gold
    seen = 0
    for batch in _batches(make_dataset(src, tgt, 300, shuffle=True, seed=4, alignments=links)):
        assert batch["alignment"].dtype == np.float32
        assert batch["alignment"].shape == batch["target"].shape + batch["source"].shape[1:]
        for s_row, matrix in zip(batch["source"], batch["alignment"], strict=True):
            gold = expected[tuple(_unpad(s_row)[:-1])]
            t, s = gold.shape
            np.testing.assert_allclose(matrix[:t, :s], gold)
            assert not matrix[t:].any() and not matrix[:, s:].any()
            seen += 1
    assert seen == len(src)
    with pytest.raises(ValueError, match="the links of every pair"):
        make_dataset(src, tgt, 300, shuffle=False, alignments=links[:-1])


def test_batches_have_shapes_dtypes_bos_eos_and_zero_padding():
    src, tgt = _corpus()
    batches = _batches(make_dataset(src, tgt, tokens_per_batch=200, shuffle=False))
    seen = 0
    by_source = {}
    for batch in batches:
        assert set(batch) == {"source", "decoder_in", "target"}
        assert all(v.dtype == np.int32 and v.ndim == 2 for v in batch.values())
        b = len(batch["source"])
        assert batch["decoder_in"].shape == batch["target"].shape and len(batch["target"]) == b
        assert (batch["decoder_in"][:, 0] == BOS).all()
        for s_row, d_row, t_row in zip(batch["source"], batch["decoder_in"], batch["target"],
                                       strict=True):
            s, d, t = _unpad(s_row), _unpad(d_row), _unpad(t_row)
            assert s[-1] == EOS and EOS not in s[:-1] and BOS not in s
            assert t[-1] == EOS and d[0] == BOS and d[1:] == t[:-1] and len(d) == len(t)
            assert (s_row[len(s):] == PAD).all() and (t_row[len(t):] == PAD).all()
            by_source[tuple(s[:-1])] = t[:-1]
        seen += b
    assert seen == len(src)
    assert all(by_source[tuple(s)] == t for s, t in zip(src, tgt, strict=True))
    # Padding is only what the batch's longest sentence needs.
    assert all(
        (batch["source"][:, -1] != PAD).any() and (batch["target"][:, -1] != PAD).any()
        for batch in batches
    )


@pytest.mark.parametrize("tokens_per_batch, bucket_width", [(64, 1), (200, 5), (37, 7)])
def test_token_budget_is_respected(tokens_per_batch, bucket_width):
    src, tgt = _corpus(seed=1)
    dataset = make_dataset(src, tgt, tokens_per_batch, shuffle=True, seed=0,
                           bucket_width=bucket_width)
    batches = _batches(dataset)
    assert sum(len(b["source"]) for b in batches) == len(src)
    for batch in batches:
        b = len(batch["source"])
        width = max(batch["source"].shape[1], batch["target"].shape[1])
        assert b == 1 or b * width <= tokens_per_batch
    assert max(len(b["source"]) for b in batches) > 1


def test_bucket_plan_covers_the_longest_sentence():
    boundaries, sizes = bucket_plan(max_length=12, tokens_per_batch=100, bucket_width=5)
    assert boundaries == [6, 11, 13] and sizes == [20, 10, 8, 1]
    assert bucket_plan(3, 2, 10) == ([4], [1, 1])


def test_shuffle_is_deterministic_from_the_seed_and_repeat_goes_on():
    src, tgt = _corpus(seed=2)

    def first_sources(seed, shuffle=True):
        dataset = make_dataset(src, tgt, 100, shuffle=shuffle, seed=seed)
        return [b["source"].tolist() for b in _batches(dataset)]

    assert first_sources(3) == first_sources(3)
    assert first_sources(3) != first_sources(4)
    assert first_sources(3, shuffle=False) == first_sources(4, shuffle=False)
    repeated = make_dataset(src, tgt, 100, shuffle=True, seed=3, repeat=True)
    count = sum(len(b["source"]) for b in repeated.take(3 * len(first_sources(3))))
    assert count > 2 * len(src)


def test_dataset_feeds_thousands_of_tokens_a_second():
    src, tgt = _corpus(n=4000, seed=4)
    dataset = make_dataset(src, tgt, 2000, shuffle=True, seed=0)
    start = time.perf_counter()
    tokens = sum(int(tf.math.count_nonzero(b["target"])) for b in dataset)
    assert tokens == sum(len(t) + 1 for t in tgt)
    assert tokens / (time.perf_counter() - start) > 5000


def test_bad_dataset_arguments():
    src, tgt = _corpus(n=5)
    with pytest.raises(ValueError, match="Received: tokens_per_batch=0"):
        make_dataset(src, tgt, 0, shuffle=False)
    with pytest.raises(ValueError, match="len\\(src_ids\\)=0"):
        make_dataset([], [], 10, shuffle=False)


def test_eval_batches_keep_order_and_pad_with_zero():
    src = [[5, 6, 7], [8], [9, 10], [11, 12, 13, 14], [15]]
    batches = make_eval_batches(src, batch_size=2)
    assert [b.indices.tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0].source.dtype == np.int32
    assert batches[0].source.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]
    assert batches[2].source.tolist() == [[15, EOS]]
    by_length = make_eval_batches(src, batch_size=2, sort_by_length=True)
    assert [b.indices.tolist() for b in by_length] == [[1, 4], [2, 0], [3]]
    rows = {int(i): _unpad(r)[:-1] for b in by_length for i, r in zip(b.indices, b.source,
                                                                          strict=True)}
    assert [rows[i] for i in range(len(src))] == src
