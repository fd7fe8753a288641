"""Tests for translate.sampling: the temperature/top-k/top-p filter (golden values), the
sampler's distribution, and sampling through `decoding.greedy_decode` (greedy limits,
reproducibility, independence from the batch).

Letters: B batch, V vocabulary.
"""

import numpy as np
import pytest
import tensorflow as tf

from translate import decoding
from translate.sampling import Sampler, filter_log_probs

BOS, EOS = 1, 2
NEG_INF = -np.inf


def test_filter_golden_values():
    probs = np.array([[0.5, 0.3, 0.15, 0.05],
                      [0.05, 0.15, 0.3, 0.5]])  # the same distribution, reversed
    log_probs = np.log(probs)
    top2 = [[np.log(0.5), np.log(0.3), NEG_INF, NEG_INF],
            [NEG_INF, NEG_INF, np.log(0.3), np.log(0.5)]]
    np.testing.assert_allclose(filter_log_probs(log_probs), log_probs, rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, topk=2), top2, rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, topk=9), log_probs, rtol=1e-6)
    # Nucleus: the tokens ranked before a kept one hold less than topp.
    np.testing.assert_allclose(filter_log_probs(log_probs, topp=0.7), top2, rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, topp=0.4)[0],
                               [np.log(0.5), NEG_INF, NEG_INF, NEG_INF], rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, topp=0.85)[0],
                               [*np.log([0.5, 0.3, 0.15]), NEG_INF], rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, temperature=2.0), log_probs / 2,
                               rtol=1e-6)
    # All three, in order: p^2 renormalized over the top 3 is [.690, .248, .062], so top-p
    # 0.9 keeps two tokens; without the temperature, [.53, .32, .16]: it keeps three.
    np.testing.assert_allclose(
        filter_log_probs(log_probs, topk=3, topp=0.9, temperature=0.5)[0],
        [2 * np.log(0.5), 2 * np.log(0.3), NEG_INF, NEG_INF], rtol=1e-6)
    np.testing.assert_allclose(filter_log_probs(log_probs, topk=3, topp=0.9)[0],
                               [*np.log([0.5, 0.3, 0.15]), NEG_INF], rtol=1e-6)


def test_sampler_draws_from_the_filtered_distribution():
    """2,000 sentences (keys), one step: only the kept tokens appear, at the renormalized
    frequencies (4 standard deviations)."""
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    rows = 2000
    log_probs = np.tile(np.log(probs), (rows, 1)).astype(np.float32)
    ids = Sampler(topk=3, seed=5).for_sentences(tf.range(rows))(log_probs, tf.constant(0))
    counts = np.bincount(ids.numpy(), minlength=4)
    expected = probs[:3] / probs[:3].sum()
    assert counts[3] == 0
    sd = np.sqrt(rows * expected * (1 - expected))
    assert np.all(np.abs(counts[:3] - rows * expected) < 4 * sd), counts


class TableModel:
    """Next-token logits from a fixed table indexed by the previous token (a bigram model):
    a spread distribution, EOS unlikely, so sentences run to their max length."""

    def __init__(self, batch=4, vocab=12, scale=0.5, seed=0):
        rng = np.random.default_rng(seed)
        table = scale * rng.normal(size=(vocab, vocab))
        table[:, EOS] -= 3.0
        self.table = tf.constant(table, tf.float32)
        self.batch = batch

    def step_fn(self, tokens, state, t):
        del t
        return tf.gather(self.table, tokens), state, tf.ones([tf.shape(tokens)[0], 2]) / 2

    def decode(self, sampler=None, rows=None):
        rows = self.batch if rows is None else rows
        return decoding.greedy_decode(self.step_fn, {"dummy": tf.zeros([rows, 1])},
                                      tf.fill([rows], BOS), EOS, tf.fill([rows], 12), 2,
                                      sampler=sampler)


def test_sampling_limits_equal_greedy():
    model = TableModel(scale=3.0)
    greedy = model.decode()
    keys = tf.range(model.batch)
    for sampler in (Sampler(topk=1, seed=3), Sampler(temperature=1e-4, seed=3),
                    Sampler(topp=1e-3, seed=3)):
        sampled = model.decode(sampler.for_sentences(keys))
        np.testing.assert_array_equal(sampled.tokens, greedy.tokens)
        np.testing.assert_allclose(sampled.log_probs, greedy.log_probs, rtol=1e-6)


def test_sampling_is_seeded_and_independent_of_the_batch():
    model = TableModel()
    keys = tf.range(model.batch)
    first = model.decode(Sampler(seed=7).for_sentences(keys))
    again = model.decode(Sampler(seed=7).for_sentences(keys))
    np.testing.assert_array_equal(first.tokens, again.tokens)
    # Every row has the same input: only the keys tell the sentences apart.
    assert len({tuple(row) for row in first.tokens[:, 0].numpy()}) == model.batch
    other = model.decode(Sampler(seed=8).for_sentences(keys))
    assert not np.array_equal(first.tokens, other.tokens)
    # Sentences 2 and 3 decoded in a batch of their own: the same samples.
    alone = model.decode(Sampler(seed=7).for_sentences(tf.constant([2, 3])), rows=2)
    np.testing.assert_array_equal(alone.tokens, first.tokens[2:])
    # The scores are the model's log-probs of the sampled tokens.
    table = tf.nn.log_softmax(model.table).numpy()
    tokens, lengths = first.tokens.numpy()[0, 0], first.lengths.numpy()[0, 0]
    previous = [BOS, *tokens[:lengths - 1]]
    expected = sum(table[p, t] for p, t in zip(previous, tokens[:lengths], strict=True))
    np.testing.assert_allclose(first.log_probs[0, 0], expected, rtol=1e-5)


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="topk=-1"):
        Sampler(topk=-1)
    with pytest.raises(ValueError, match="topp=0.0"):
        Sampler(topp=0.0)
    with pytest.raises(ValueError, match="temperature=0.0"):
        Sampler(temperature=0.0)
