"""Tests for translate.decoding: greedy decoding and beam search on toy models.

Letters: B batch, K beam width, N n-best, T target steps, S source length, V vocabulary.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from translate import decoding

BOS, EOS = 1, 2


class ToyModel:
    """A deterministic attention RNN: embedding + tanh RNN + dot attention + output matrix.

    The TensorFlow `step_fn` and the NumPy `np_step` compute the same thing.
    """

    def __init__(self, seed, batch=3, vocab=7, source=5, hidden=8, source_lengths=None,
                 eos_bias=1.0, scale=1.5):
        rng = np.random.default_rng(seed)
        self.batch, self.vocab, self.source = batch, vocab, source
        self.embedding = rng.normal(size=(vocab, hidden)).astype(np.float32)
        self.recurrent = (0.7 * rng.normal(size=(hidden, hidden))).astype(np.float32)
        self.output = (scale * rng.normal(size=(2 * hidden, vocab))).astype(np.float32)
        self.output_bias = np.zeros(vocab, np.float32)
        self.output_bias[EOS] = eos_bias
        self.memory = rng.normal(size=(batch, source, hidden)).astype(np.float32)
        if source_lengths is None:
            source_lengths = [source] * batch
        self.source_lengths = np.asarray(source_lengths, np.int32)
        self.mask = (np.arange(source)[None, :] < self.source_lengths[:, None]).astype(np.float32)

    def initial_state(self, beam_width=None):
        state = {
            "h": tf.zeros([self.batch, self.embedding.shape[1]]),
            "memory": tf.constant(self.memory),
            "mask": tf.constant(self.mask),
        }
        return state if beam_width is None else decoding.tile_beams(state, beam_width)

    def step_fn(self, tokens, state, t):
        del t
        h = tf.tanh(tf.gather(self.embedding, tokens) + tf.matmul(state["h"], self.recurrent))
        energies = tf.einsum("nh,nsh->ns", h, state["memory"])
        energies = tf.where(state["mask"] > 0, energies, -1e9)
        alignments = tf.nn.softmax(energies, axis=-1) * state["mask"]
        context = tf.einsum("ns,nsh->nh", alignments, state["memory"])
        logits = tf.matmul(tf.concat([h, context], -1), self.output) + self.output_bias
        return logits, dict(state, h=h), alignments

    def np_step(self, b, token, h):
        h = np.tanh(self.embedding[token].astype(np.float64) + h @ self.recurrent)
        energies = self.memory[b] @ h
        energies = np.where(self.mask[b] > 0, energies, -np.inf)
        alignments = np.exp(energies - energies.max())
        alignments /= alignments.sum()
        context = alignments @ self.memory[b]
        logits = np.concatenate([h, context]) @ self.output + self.output_bias
        log_probs = logits - logits.max()
        log_probs -= np.log(np.exp(log_probs).sum())
        return log_probs, alignments, h

    def replay(self, b, tokens):
        """log P(tokens) and the alignments [len, S] of sentence b, in NumPy."""
        h = np.zeros(self.embedding.shape[1])
        previous, total, history = BOS, 0.0, []
        for token in tokens:
            log_probs, alignments, h = self.np_step(b, previous, h)
            total += log_probs[token]
            history.append(alignments)
            previous = token
        return total, np.array(history).reshape(len(tokens), self.source)

    def np_greedy(self, b, max_length):
        h = np.zeros(self.embedding.shape[1])
        previous, tokens = BOS, []
        while len(tokens) < max_length:
            log_probs, _, h = self.np_step(b, previous, h)
            previous = int(np.argmax(log_probs))
            tokens.append(previous)
            if previous == EOS:
                break
        return tokens


def _greedy(model, max_lengths, **kwargs):
    return decoding.greedy_decode(
        model.step_fn, model.initial_state(), tf.fill([model.batch], BOS), EOS,
        max_lengths, model.source, **kwargs)


def _beam(model, max_lengths, beam_width, **kwargs):
    return decoding.beam_search(
        model.step_fn, model.initial_state(beam_width), model.batch, beam_width, BOS, EOS,
        max_lengths, model.source, **kwargs)


def _numpy(output):
    return {k: np.asarray(v) for k, v in vars(output).items()}


def _hypotheses(output, b):
    out = _numpy(output)
    return [tuple(out["tokens"][b, i, :length]) for i, length in enumerate(out["lengths"][b])]


def _check_replay(model, output, max_lengths):
    """Tokens, log-probs and alignments of every hypothesis agree with a NumPy replay."""
    out = _numpy(output)
    for b in range(model.batch):
        for i, tokens in enumerate(_hypotheses(output, b)):
            length = len(tokens)
            assert 1 <= length <= max_lengths[b]
            assert EOS not in tokens[:-1]
            assert tokens[-1] == EOS or length == max_lengths[b]
            log_prob, alignments = model.replay(b, tokens)
            np.testing.assert_allclose(out["log_probs"][b, i], log_prob, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(out["alignments"][b, i, :length], alignments, atol=1e-5)
            assert not out["tokens"][b, i, length:].any()
            assert not out["alignments"][b, i, length:].any()


def _exhaustive(model, b, max_length):
    """All (log-prob, tokens) hypotheses of sentence b, best first."""
    others = [v for v in range(model.vocab) if v != EOS]
    hypotheses = []
    for length in range(1, max_length + 1):
        for prefix in itertools.product(others, repeat=length - 1):
            lasts = range(model.vocab) if length == max_length else [EOS]
            for last in lasts:
                tokens = (*prefix, last)
                hypotheses.append((model.replay(b, tokens)[0], tokens))
    return sorted(hypotheses, key=lambda h: -h[0])


MAX_LENGTHS = [6, 4, 9]


def test_greedy_matches_numpy_loop():
    model = ToyModel(seed=3, source_lengths=[5, 3, 4])
    output = _greedy(model, MAX_LENGTHS)
    out = _numpy(output)
    assert out["tokens"].shape == (3, 1, out["lengths"].max())
    assert out["alignments"].shape == (3, 1, out["lengths"].max(), model.source)
    for b in range(model.batch):
        expected = model.np_greedy(b, MAX_LENGTHS[b])
        assert _hypotheses(output, b) == [tuple(expected)]
        log_prob, alignments = model.replay(b, expected)
        np.testing.assert_allclose(out["log_probs"][b, 0], log_prob, rtol=1e-5)
        np.testing.assert_allclose(out["alignments"][b, 0, : len(expected)], alignments,
                                   atol=1e-6)
        assert not out["alignments"][b, 0, len(expected):].any()
    np.testing.assert_array_equal(out["scores"], out["log_probs"])
    # The toy model ends some sentences early and forces others to stop.
    assert set(out["lengths"][:, 0] < MAX_LENGTHS) == {True, False}
    # Padded source positions get no attention.
    assert not out["alignments"][1, :, :, 3:].any()


@pytest.mark.parametrize("seed", [1, 3, 7])
def test_beam_width_one_equals_greedy(seed):
    model = ToyModel(seed=seed, source_lengths=[5, 3, 4])
    greedy = _numpy(_greedy(model, MAX_LENGTHS))
    beam = _numpy(_beam(model, MAX_LENGTHS, beam_width=1))
    for key in greedy:
        np.testing.assert_array_equal(beam[key], greedy[key], err_msg=key)
        assert beam[key].dtype == greedy[key].dtype


def test_beam_at_least_as_likely_as_greedy_and_consistent():
    model = ToyModel(seed=0, source_lengths=[5, 2, 4])
    greedy = _numpy(_greedy(model, MAX_LENGTHS))
    output = _beam(model, MAX_LENGTHS, beam_width=4, n_best=4)
    beam = _numpy(output)
    assert beam["tokens"].shape[:2] == (3, 4)
    assert np.all(beam["log_probs"][:, 0] >= greedy["log_probs"][:, 0] - 1e-5)
    assert np.any(beam["log_probs"][:, 0] > greedy["log_probs"][:, 0] + 0.1)  # strictly better
    _check_replay(model, output, MAX_LENGTHS)


def test_beam_matches_exhaustive_search():
    model = ToyModel(seed=4, vocab=3, scale=1.0)
    max_lengths = [3, 3, 2]
    out = _beam(model, max_lengths, beam_width=9, n_best=9)
    scores = np.asarray(out.scores)
    for b in range(model.batch):
        expected = _exhaustive(model, b, max_lengths[b])
        found = [h for h in _hypotheses(out, b) if h]
        assert found[0] == expected[0][1]
        # K = 9 keeps every hypothesis that can reach the top 9 of this tiny problem.
        n = min(9, len(expected))
        assert found[:n] == [tokens for _, tokens in expected[:n]]
        np.testing.assert_allclose(scores[b, :n], [s for s, _ in expected[:n]], rtol=1e-5)
        assert np.all(np.isneginf(scores[b, n:]))


def test_n_best_distinct_and_sorted():
    model = ToyModel(seed=5, source_lengths=[5, 3, 4])
    out = _beam(model, MAX_LENGTHS, beam_width=5, n_best=3, length_penalty=0.6)
    scores = np.asarray(out.scores)
    assert scores.shape == (3, 3)
    assert np.all(np.diff(scores, axis=1) <= 0)
    for b in range(model.batch):
        assert len(set(_hypotheses(out, b))) == 3
    _check_replay(model, out, MAX_LENGTHS)


class TableModel:
    """A crafted model whose log-probs depend only on the previous token.

    V = 4: 0 pad, 1 BOS, 2 EOS, 3 "a". After BOS, EOS has p=0.5 and "a" p=0.45; after "a",
    EOS has p=0.9. So [EOS] beats [a, EOS] on log-prob but not under a strong length penalty.
    """

    source = 2
    table = np.log(np.array([
        [0.25, 0.25, 0.25, 0.25],
        [0.02, 0.03, 0.50, 0.45],
        [0.25, 0.25, 0.25, 0.25],
        [0.02, 0.03, 0.90, 0.05],
    ], np.float32))

    def step_fn(self, tokens, state, t):
        del t
        logits = tf.gather(self.table, tokens)
        alignments = tf.one_hot(tf.zeros_like(tokens), self.source)
        return logits, state, alignments


def test_length_penalty_favours_longer_hypotheses():
    model = TableModel()
    best = {}
    for alpha in (0.0, 2.0):
        out = decoding.beam_search(
            model.step_fn, {"dummy": tf.zeros([2 * 2, 1])}, 2, 2, BOS, EOS, [3, 3],
            model.source, length_penalty=alpha, n_best=2)
        best[alpha] = _hypotheses(out, 0)
        lp = ((5.0 + np.asarray(out.lengths)) / 6.0) ** alpha
        np.testing.assert_allclose(out.scores, np.asarray(out.log_probs) / lp, rtol=1e-6)
    assert best[0.0] == [(EOS,), (3, EOS)]
    assert best[2.0] == [(3, EOS), (EOS,)]


def test_coverage_penalty_formula():
    sums = np.array([[[0.2, 1.7, 0.0, 0.5]], [[0.9, 0.0, 0.3, 0.0]]], np.float32)  # [B, 1, S]
    got = decoding.gnmt_coverage_penalty(sums, 0.4, source_lengths=[3, 2])
    expected = [
        0.4 * (np.log(0.2) + np.log(1.0) + np.log(1e-10)),
        0.4 * (np.log(0.9) + np.log(1e-10)),
    ]
    np.testing.assert_allclose(np.asarray(got)[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(
        decoding.gnmt_length_penalty([1, 4], 0.6), [(6 / 6) ** 0.6, (9 / 6) ** 0.6], rtol=1e-6)


def test_beam_scores_follow_gnmt_formula():
    source_lengths = [5, 3, 4]
    model = ToyModel(seed=6, source_lengths=source_lengths)
    alpha, beta = 0.8, 0.3
    out = _beam(model, MAX_LENGTHS, beam_width=4, n_best=2, length_penalty=alpha,
                coverage_penalty=beta, source_lengths=source_lengths)
    res = _numpy(out)
    coverage = res["alignments"].sum(axis=2)  # [B, N, S]
    mask = np.arange(model.source)[None, None, :] < np.array(source_lengths)[:, None, None]
    cp = beta * np.where(mask, np.log(np.clip(coverage, 1e-10, 1.0)), 0.0).sum(-1)
    lp = ((5.0 + res["lengths"]) / 6.0) ** alpha
    np.testing.assert_allclose(res["scores"], res["log_probs"] / lp + cp, rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(res["scores"], axis=1) <= 0)
    _check_replay(model, out, MAX_LENGTHS)


HEAD_WEIGHTS = np.array([0.5, 1.5, 1.0], np.float32)  # mean 1: the last layer's head mean is α


def _with_layers_and_heads(model):
    """`model.step_fn` with alignments [R, L=2, N=3, S]: layer 0 holds α rolled by one source
    position, layer 1 holds α scaled by `HEAD_WEIGHTS` (so its head mean is α)."""

    def step_fn(tokens, state, t):
        logits, state, alignments = model.step_fn(tokens, state, t)
        first = tf.repeat(tf.roll(alignments, 1, axis=-1)[:, None], 3, axis=1)
        last = alignments[:, None, :] * HEAD_WEIGHTS[None, :, None]
        return logits, state, tf.stack([first, last], axis=1)

    return step_fn


def _expected_heads(alignments):
    """What `_with_layers_and_heads` makes of an α history [..., S]: [..., 2, 3, S]."""
    first = np.repeat(np.roll(alignments, 1, axis=-1)[..., None, :], 3, axis=-2)
    last = alignments[..., None, :] * HEAD_WEIGHTS[:, None]
    return np.stack([first, last], axis=-3)


def test_alignments_with_layer_and_head_dims_are_the_hypotheses_own():
    """Step alignments [R, L, N, S]: the same hypotheses and scores as with α alone, and the
    histories [B, N, T, L, N, S] are those of each hypothesis' own steps; the coverage penalty
    sums the last layer's head mean (`coverage_alignments`), so its scores are α's."""
    source_lengths = [5, 3, 4]
    model = ToyModel(seed=6, source_lengths=source_lengths)
    step_fn = _with_layers_and_heads(model)
    last_mean = lambda x: tf.reduce_mean(x[:, -1], axis=1)  # noqa: E731
    plain = _numpy(_greedy(model, MAX_LENGTHS))
    heads = _numpy(decoding.greedy_decode(
        step_fn, model.initial_state(), tf.fill([model.batch], BOS), EOS, MAX_LENGTHS,
        model.source, alignment_dims=(2, 3)))
    for name in ("tokens", "lengths", "scores"):
        np.testing.assert_array_equal(heads[name], plain[name])
    assert heads["alignments"].shape == plain["alignments"].shape[:3] + (2, 3, model.source)
    np.testing.assert_allclose(heads["alignments"], _expected_heads(plain["alignments"]),
                               atol=1e-6)
    kwargs = dict(beam_width=4, n_best=2, length_penalty=0.8, coverage_penalty=0.3,
                  source_lengths=source_lengths)
    plain = _numpy(_beam(model, MAX_LENGTHS, **kwargs))
    heads = _numpy(decoding.beam_search(
        step_fn, model.initial_state(4), model.batch, 4, BOS, EOS, MAX_LENGTHS, model.source,
        alignment_dims=(2, 3), coverage_alignments=last_mean, **{
            k: v for k, v in kwargs.items() if k != "beam_width"}))
    for name in ("tokens", "lengths"):
        np.testing.assert_array_equal(heads[name], plain[name])
    np.testing.assert_allclose(heads["scores"], plain["scores"], rtol=1e-5)
    np.testing.assert_allclose(heads["alignments"], _expected_heads(plain["alignments"]),
                               atol=1e-6)
    # The default coverage reduction is the mean over E: other scores here.
    default = _numpy(decoding.beam_search(
        step_fn, model.initial_state(4), model.batch, 4, BOS, EOS, MAX_LENGTHS, model.source,
        alignment_dims=(2, 3), **{k: v for k, v in kwargs.items() if k != "beam_width"}))
    assert not np.allclose(default["scores"], plain["scores"])
    with pytest.raises(ValueError, match="alignments of rank 4"):
        decoding.greedy_decode(model.step_fn, model.initial_state(), tf.fill([3], BOS), EOS,
                               MAX_LENGTHS, model.source, alignment_dims=(2, 3))
    with pytest.raises(ValueError, match="alignment_dims to be a sequence of positive ints"):
        _greedy(model, MAX_LENGTHS, alignment_dims=(2, 0))


def test_max_lengths_are_respected():
    model = ToyModel(seed=7, eos_bias=-50.0)  # EOS practically never wins
    max_lengths = [2, 5, 3]
    for out in (_greedy(model, max_lengths), _beam(model, max_lengths, beam_width=3, n_best=2)):
        res = _numpy(out)
        np.testing.assert_array_equal(res["lengths"], np.broadcast_to(
            np.array(max_lengths)[:, None], res["lengths"].shape))
        assert res["tokens"].shape[-1] == 5
        _check_replay(model, out, max_lengths)
    # static_max_length pads the time axis and clips the max lengths.
    res = _numpy(_beam(model, max_lengths, beam_width=2, static_max_length=4))
    assert res["tokens"].shape == (3, 1, 4)
    np.testing.assert_array_equal(res["lengths"][:, 0], [2, 4, 3])


def test_half_precision_model_gives_float32_outputs():
    model = ToyModel(seed=8)

    def step_fn(tokens, state, t):
        logits, state, alignments = model.step_fn(tokens, state, t)
        return tf.cast(logits, tf.float16), state, tf.cast(alignments, tf.bfloat16)

    out = decoding.beam_search(step_fn, model.initial_state(2), 3, 2, BOS, EOS, MAX_LENGTHS,
                               model.source, length_penalty=0.5, coverage_penalty=0.2)
    for value in (out.scores, out.log_probs, out.alignments):
        assert value.dtype == tf.float32
    assert out.tokens.dtype == tf.int32 and out.lengths.dtype == tf.int32


def test_tf_function_matches_eager():
    model = ToyModel(seed=9, source_lengths=[5, 3, 4])
    kwargs = {"length_penalty": 0.6, "coverage_penalty": 0.2, "n_best": 2,
              "source_lengths": model.source_lengths}

    # Traced as the Translator traces them: without AutoGraph (explicit tf.while_loops).
    @tf.function(reduce_retracing=True, autograph=False)
    def greedy_fn(max_lengths):
        return _greedy(model, max_lengths)

    @tf.function(reduce_retracing=True, autograph=False)
    def beam_fn(max_lengths):
        return _beam(model, max_lengths, beam_width=3, **kwargs)

    for max_lengths in ([6, 4, 9], [3, 5, 2]):
        pairs = [
            (greedy_fn(tf.constant(max_lengths)), _greedy(model, max_lengths)),
            (beam_fn(tf.constant(max_lengths)), _beam(model, max_lengths, 3, **kwargs)),
        ]
        for graph, eager in pairs:
            graph, eager = _numpy(graph), _numpy(eager)
            for key in ("tokens", "lengths"):
                np.testing.assert_array_equal(graph[key], eager[key], err_msg=key)
            for key in ("scores", "log_probs", "alignments"):
                np.testing.assert_allclose(graph[key], eager[key], rtol=1e-5, atol=1e-6,
                                           err_msg=key)


def test_tf_function_with_unknown_shapes():
    model = ToyModel(seed=9, source_lengths=[5, 3, 4])
    hidden = model.embedding.shape[1]

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, hidden]), tf.TensorSpec([None, None]),
        tf.TensorSpec([None], tf.int32)], autograph=False)
    def beam_fn(memory, mask, max_lengths):
        batch, source = tf.shape(memory)[0], tf.shape(memory)[1]
        state = {"h": tf.zeros([batch, hidden]), "memory": memory, "mask": mask}
        return decoding.beam_search(
            model.step_fn, decoding.tile_beams(state, 3), batch, 3, BOS, EOS, max_lengths,
            source, length_penalty=0.6, coverage_penalty=0.2, n_best=2,
            source_lengths=tf.reduce_sum(tf.cast(mask, tf.int32), 1))

    graph = _numpy(beam_fn(model.memory, model.mask, tf.constant(MAX_LENGTHS)))
    eager = _numpy(_beam(model, MAX_LENGTHS, 3, length_penalty=0.6, coverage_penalty=0.2,
                         n_best=2, source_lengths=model.source_lengths))
    np.testing.assert_array_equal(graph["tokens"], eager["tokens"])
    np.testing.assert_allclose(graph["scores"], eager["scores"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(graph["alignments"], eager["alignments"], atol=1e-6)


def test_xla_with_static_max_length():
    model = ToyModel(seed=10, source_lengths=[5, 3, 4])

    @tf.function(jit_compile=True, autograph=False)
    def decode(max_lengths):
        greedy = _greedy(model, max_lengths, static_max_length=9)
        beam = _beam(model, max_lengths, beam_width=3, n_best=2, length_penalty=0.6,
                     coverage_penalty=0.2, static_max_length=9)
        return greedy, beam

    compiled = decode(tf.constant(MAX_LENGTHS))
    eager = (_greedy(model, MAX_LENGTHS, static_max_length=9),
             _beam(model, MAX_LENGTHS, beam_width=3, n_best=2, length_penalty=0.6,
                   coverage_penalty=0.2, static_max_length=9))
    for xla, ref in zip(compiled, eager, strict=True):
        xla, ref = _numpy(xla), _numpy(ref)
        assert xla["tokens"].shape[-1] == 9
        np.testing.assert_array_equal(xla["tokens"], ref["tokens"])
        np.testing.assert_array_equal(xla["lengths"], ref["lengths"])
        np.testing.assert_allclose(xla["scores"], ref["scores"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(xla["alignments"], ref["alignments"], atol=1e-5)


def test_tile_beams_and_max_decode_lengths():
    tiled = decoding.tile_beams({"a": tf.constant([[1, 2], [3, 4]]), "b": np.array([5, 6])}, 3)
    np.testing.assert_array_equal(tiled["a"][:, 0], [1, 1, 1, 3, 3, 3])
    np.testing.assert_array_equal(tiled["b"], [5, 5, 5, 6, 6, 6])
    np.testing.assert_array_equal(decoding.max_decode_lengths([0, 3, 10]), [10, 16, 30])
    np.testing.assert_array_equal(
        decoding.max_decode_lengths([0, 3, 10], ratio=1.5, extra=0, cap=12), [1, 5, 12])


def test_argument_errors():
    model = ToyModel(seed=0)
    with pytest.raises(ValueError, match="Expected n_best <= beam_width"):
        _beam(model, MAX_LENGTHS, beam_width=2, n_best=3)
    with pytest.raises(ValueError, match="Received: beam_width=0"):
        decoding.tile_beams({"a": tf.zeros([2, 1])}, 0)
    with pytest.raises(ValueError, match="Received: coverage_penalty=-1"):
        _beam(model, MAX_LENGTHS, beam_width=2, coverage_penalty=-1.0)
    with pytest.raises(ValueError, match="Expected max_lengths of shape"):
        _beam(model, [3, 3], beam_width=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected max_lengths >= 1"):
        _greedy(model, [3, 0, 3])
    with pytest.raises(ValueError, match="Expected ratio >= 0"):
        decoding.max_decode_lengths([3], ratio=-1.0)
