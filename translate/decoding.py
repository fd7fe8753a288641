"""Batched greedy decoding and beam search for attention NMT models.

Both decoders run a single `tf.while_loop` over target steps with fixed-size
preallocated buffers, so they work eagerly, inside `tf.function` and (with a
static `static_max_length`) under XLA. Both return the alignment (attention)
history of every returned hypothesis.

Letters: B batch, K beam width, N n-best, T target steps, S source length,
V vocabulary.

The model is seen only through a step function (`StepFn`):

    step_fn(tokens, state, t) -> (logits, new_state, alignments)

with `tokens` int32 [R] (the previous target tokens), `state` a nest of
tensors each with leading dimension R, `t` an int32 scalar (the step, from 0),
`logits` float [R, V], `new_state` with the structure and shapes of `state`,
and `alignments` float [R, *E, S] (0 on padded source positions), where E
are the decoder's `alignment_dims`: none for an RNN's one attention ([R, S]),
(layers, heads) for a Transformer's cross-attention ([R, L, N, S]). R is B
for greedy decoding and B*K for beam search, with rows ordered batch-major
(row b*K + k is beam k of sentence b); per-sentence tensors such as the
encoder memory are tiled to B*K rows with `tile_beams`.

Scores (Wu et al. 2016, "Google's Neural Machine Translation System"):

    score(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y)
    lp(Y) = (5 + |Y|)^alpha / 6^alpha
    cp(X; Y) = beta * sum_{s < |X|} log(min(sum_t a_{t,s}, 1))

where |Y| counts the EOS token and the log is clipped at 1e-10 (as OpenNMT
does). With alpha = beta = 0 the score is the plain sum of log-probabilities.
The a_{t,s} of the coverage penalty are one [S] distribution per step: with
extra alignment dims, `beam_search`'s `coverage_alignments` reduces them (by
default, the mean over E).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

__all__ = [
    "BeamState",
    "CoverageFn",
    "DecodeOutput",
    "StepFn",
    "beam_search",
    "gnmt_coverage_penalty",
    "gnmt_length_penalty",
    "greedy_decode",
    "max_decode_lengths",
    "tile_beams",
]

StepFn = Callable[[tf.Tensor, Any, tf.Tensor], tuple[tf.Tensor, Any, tf.Tensor]]
CoverageFn = Callable[[tf.Tensor], tf.Tensor]

_COVERAGE_EPSILON = 1e-10
_NEG_INF = float("-inf")


class _Nested:
    """`tf.nest`'s custom-nest protocol for a dataclass of tensors, so that it can go through
    a `tf.function` or a `tf.while_loop` as one structure."""

    def __tf_flatten__(self):
        return (), tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    @classmethod
    def __tf_unflatten__(cls, metadata, components):
        del metadata
        return cls(*components)


@dataclasses.dataclass(frozen=True)
class DecodeOutput(_Nested):
    """The hypotheses returned by `greedy_decode` and `beam_search`.

    The class follows `tf.nest`'s custom-nest protocol, so it can be returned
    from a `tf.function`.

    Attributes:
        tokens: int32 [B, N, T]: the tokens, EOS included, 0-padded after it.
        lengths: int32 [B, N]: the number of tokens, EOS included; equal to
            the sentence's maximum length when the hypothesis never ended.
        scores: float32 [B, N]: the final (penalized) score used for ranking,
            descending along N. For greedy decoding, the sum of log-probs.
        log_probs: float32 [B, N]: the unpenalized sum of token log-probs.
        alignments: float32 [B, N, T, *E, S]: the attention history of each
            hypothesis (the alignments of the steps that produced its tokens),
            0 after its length; E are the `alignment_dims` the decoder was
            given (none: [B, N, T, S]).
    """

    tokens: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    log_probs: tf.Tensor
    alignments: tf.Tensor


def tile_beams(nest: Any, beam_width: int) -> Any:
    """Repeats every tensor of a nest `beam_width` times along its first axis.

    Args:
        nest: a nest of tensors, each [B, ...].
        beam_width: K, a positive Python int.

    Returns:
        The nest with each tensor [B*K, ...], where row b*K + k is row b of
        the input.

    Raises:
        ValueError: if `beam_width` is not a positive int, or a tensor has no
            leading batch dimension.
    """
    beam_width = _positive_int(beam_width, "beam_width")

    def tile(x):
        x = tf.convert_to_tensor(x)
        if x.shape.rank == 0:
            raise ValueError(
                f"Expected every tensor to have a leading batch dimension. Received: tensor={x}"
            )
        return tf.repeat(x, beam_width, axis=0)

    return tf.nest.map_structure(tile, nest)


def max_decode_lengths(
    source_lengths: Any, ratio: float = 2.0, extra: int = 10, cap: int | None = None
) -> tf.Tensor:
    """Maximum target lengths relative to the source lengths.

    `max_lengths[b] = min(ceil(ratio * source_lengths[b]) + extra, cap)`,
    and at least 1.

    Args:
        source_lengths: int [B].
        ratio: non-negative float.
        extra: non-negative int added to the scaled length.
        cap: optional positive int, the largest allowed length.

    Returns:
        int32 [B].

    Raises:
        ValueError: on a negative `ratio` or `extra`, or a `cap` below 1.
    """
    if ratio < 0:
        raise ValueError(f"Expected ratio >= 0. Received: ratio={ratio}")
    if extra < 0:
        raise ValueError(f"Expected extra >= 0. Received: extra={extra}")
    if cap is not None and cap < 1:
        raise ValueError(f"Expected cap >= 1 or None. Received: cap={cap}")
    source_lengths = tf.cast(tf.convert_to_tensor(source_lengths), tf.float32)
    lengths = tf.cast(tf.math.ceil(float(ratio) * source_lengths), tf.int32) + int(extra)
    if cap is not None:
        lengths = tf.minimum(lengths, int(cap))
    return tf.maximum(lengths, 1)


def gnmt_length_penalty(lengths: Any, alpha: Any) -> tf.Tensor:
    """The GNMT length penalty `lp(Y) = ((5 + |Y|) / 6)^alpha`.

    Args:
        lengths: int or float tensor of any shape, the hypothesis lengths.
        alpha: float scalar.

    Returns:
        float32, the shape of `lengths`.
    """
    lengths = tf.cast(tf.convert_to_tensor(lengths), tf.float32)
    return tf.pow((5.0 + lengths) / 6.0, tf.cast(alpha, tf.float32))


def gnmt_coverage_penalty(
    attention_sums: Any, beta: Any, source_lengths: Any = None
) -> tf.Tensor:
    """The GNMT coverage penalty `beta * sum_s log(min(sum_t a_{t,s}, 1))`.

    Args:
        attention_sums: float [B, ..., S]: the alignments summed over the
            target steps of each hypothesis.
        beta: float scalar.
        source_lengths: optional int [B]; positions `s >= source_lengths[b]`
            are left out. Defaults to all S positions.

    Returns:
        float32 [B, ...]. The log is clipped at 1e-10, so a source position
        that received no attention costs `beta * log(1e-10)`.

    Raises:
        ValueError: if `source_lengths` is given and `attention_sums` has a
            rank below 2 (or an unknown rank).
    """
    attention_sums = tf.cast(tf.convert_to_tensor(attention_sums), tf.float32)
    log_coverage = tf.math.log(tf.clip_by_value(attention_sums, _COVERAGE_EPSILON, 1.0))
    if source_lengths is not None:
        rank = attention_sums.shape.rank
        if rank is None or rank < 2:
            raise ValueError(
                "Expected attention_sums of rank >= 2 ([B, ..., S]) with source_lengths. "
                f"Received: attention_sums.shape={attention_sums.shape}"
            )
        mask = tf.sequence_mask(source_lengths, tf.shape(attention_sums)[-1], dtype=tf.float32)
        mask = tf.reshape(mask, tf.concat([tf.shape(mask)[:1], [1] * (rank - 2), [-1]], 0))
        log_coverage *= mask
    return tf.cast(beta, tf.float32) * tf.reduce_sum(log_coverage, axis=-1)


def greedy_decode(
    step_fn: StepFn,
    initial_state: Any,
    start_tokens: Any,
    eos_id: Any,
    max_lengths: Any,
    source_length: Any,
    static_max_length: int | None = None,
    sampler: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None,
    alignment_dims: Sequence[int] = (),
) -> DecodeOutput:
    """Batched greedy (argmax) decoding, or random sampling.

    Each sentence takes the most likely token at every step (or the one
    `sampler` picks) until it emits EOS or reaches `max_lengths[b]` tokens;
    the loop stops when every sentence has ended.

    Args:
        step_fn: the model's `StepFn`, called with R = B rows.
        initial_state: a nest of tensors, each [B, ...].
        start_tokens: int [B], the first input tokens.
        eos_id: int scalar, the end-of-sentence id.
        max_lengths: int [B], the maximum number of tokens (EOS included) of
            each sentence; each at least 1.
        source_length: S, an int or int scalar tensor: the last dimension of
            the alignments.
        static_max_length: optional Python int, the size of the time buffers
            and of the T axis of the output; `max_lengths` is clipped to it.
            Needed under XLA (`jit_compile=True`). Without it, T is the
            longest returned length.
        sampler: optional `pick(log_probs float32 [B, V], t int32 []) -> int32 [B]`
            that chooses each sentence's next token instead of the argmax, e.g.
            `translate.sampling.Sampler(...).for_sentences(keys)`.
        alignment_dims: E, the step alignments' dims between the rows and S
            (Python ints; default none: [R, S]).

    Returns:
        A `DecodeOutput` with N = 1 and `scores == log_probs`: the model's
        log-probabilities of the chosen tokens (with a sampler, not those of
        its filtered distribution).

    Raises:
        ValueError: on inputs of the wrong rank, a bad `static_max_length` or
            `alignment_dims`, or step alignments of another rank.
        tf.errors.InvalidArgumentError: (when run) if a max length is below 1.
    """
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
    _check_rank(start_tokens, 1, "start_tokens")
    eos_id = tf.convert_to_tensor(eos_id, tf.int32)
    source_length = _source_length(source_length)
    extra = _alignment_dims(alignment_dims)
    batch_size = _dim(start_tokens, 0)
    max_lengths, buffer_length, loop_length = _prepare_lengths(
        max_lengths, static_max_length, batch_size
    )
    initial_state = tf.nest.map_structure(tf.convert_to_tensor, initial_state)
    time_steps = tf.range(buffer_length)

    def cond(t, inputs, state, finished, *unused):
        del inputs, state, unused
        return tf.logical_and(t < loop_length, tf.logical_not(tf.reduce_all(finished)))

    def body(t, inputs, state, finished, lengths, log_probs, tokens, alignments):
        logits, new_state, step_alignments = step_fn(inputs, state, t)
        step_log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        step_alignments = _step_alignments(step_alignments, [batch_size], extra, source_length)
        if sampler is None:
            ids = tf.argmax(step_log_probs, axis=-1, output_type=tf.int32)
        else:
            ids = tf.reshape(tf.cast(sampler(step_log_probs, t), tf.int32), [batch_size])
        best = tf.gather(step_log_probs, ids, batch_dims=1)
        active = tf.logical_not(finished)
        log_probs = log_probs + tf.where(active, best, 0.0)
        lengths = lengths + tf.cast(active, tf.int32)
        write = tf.logical_and(tf.equal(time_steps, t)[None, :], active[:, None])
        tokens = tf.where(write, ids[:, None], tokens)
        alignments = tf.where(_expand(write, len(extra) + 1), step_alignments[:, None],
                              alignments)
        finished = finished | tf.equal(ids, eos_id) | (t + 1 >= max_lengths)
        next_inputs = tf.where(active, ids, eos_id)
        new_state = _restore_shapes(new_state, state)
        return t + 1, next_inputs, new_state, finished, lengths, log_probs, tokens, alignments

    loop_vars = (
        tf.constant(0, tf.int32),
        start_tokens,
        initial_state,
        tf.zeros([batch_size], tf.bool),
        tf.zeros([batch_size], tf.int32),
        tf.zeros([batch_size], tf.float32),
        tf.zeros([batch_size, buffer_length], tf.int32),
        tf.zeros([batch_size, buffer_length, *extra, source_length], tf.float32),
    )
    _, _, _, _, lengths, log_probs, tokens, alignments = tf.while_loop(
        cond, body, loop_vars, shape_invariants=_relaxed_shapes(loop_vars)
    )
    out_length = static_max_length if static_max_length is not None else tf.reduce_max(lengths)
    return DecodeOutput(
        tokens=tokens[:, None, :out_length],
        lengths=lengths[:, None],
        scores=log_probs[:, None],
        log_probs=log_probs[:, None],
        alignments=alignments[:, None, :out_length],
    )


@dataclasses.dataclass(frozen=True)
class BeamState(_Nested):
    """The loop state of `beam_search`: K alive beams and N finished hypotheses a sentence.

    Like `DecodeOutput`, it follows `tf.nest`'s custom-nest protocol, so it is the one loop
    variable of the `tf.while_loop`. T is the time buffers' length.

    Attributes:
        t: int32 []: the step (the number of tokens the alive beams hold).
        inputs: int32 [B*K]: the tokens fed to the next step.
        state: the model's state nest, each tensor [B*K, ...].
        done: bool [B]: sentences that have ended.
        alive_log_probs: float32 [B, K]: accumulated log-probs (-inf for no beam).
        alive_tokens: int32 [B, K, T]: the alive beams' tokens.
        alive_alignments: float32 [B, K, T, *E, S]: their attention histories.
        alive_coverage: float32 [B, K, S]: their attention summed over the steps.
        fin_scores: float32 [B, N]: the finished hypotheses' scores, descending.
        fin_log_probs: float32 [B, N]: their unpenalized log-probs.
        fin_lengths: int32 [B, N]: their lengths, EOS included.
        fin_tokens: int32 [B, N, T]: their tokens.
        fin_alignments: float32 [B, N, T, *E, S]: their attention histories.
    """

    t: Any
    inputs: Any
    state: Any
    done: Any
    alive_log_probs: Any
    alive_tokens: Any
    alive_alignments: Any
    alive_coverage: Any
    fin_scores: Any
    fin_log_probs: Any
    fin_lengths: Any
    fin_tokens: Any
    fin_alignments: Any


class _BeamSearch:
    """The steps of `beam_search` (see there), its arguments validated and bound."""

    def __init__(self, step_fn, batch_size, beam_width, eos_id, max_lengths, source_length,
                 length_penalty, coverage_penalty, n_best, source_lengths, buffer_length,
                 loop_length, alignment_dims, coverage_alignments):
        self.step_fn = step_fn
        self.extra, self.coverage_alignments = alignment_dims, coverage_alignments
        self.batch_size, self.k, self.n_best = batch_size, beam_width, n_best
        self.eos_id, self.max_lengths = eos_id, max_lengths
        self.source_length, self.source_lengths = source_length, source_lengths
        self.length_penalty, self.coverage_penalty = length_penalty, coverage_penalty
        self.use_length_penalty = not _is_static_zero(length_penalty)
        self.use_coverage_penalty = not _is_static_zero(coverage_penalty)
        self.buffer_length, self.loop_length = buffer_length, loop_length
        self.time_steps = tf.range(buffer_length)
        self.batch_offsets = tf.range(batch_size)[:, None] * beam_width

    def initialize(self, initial_state, start_id):
        """The state before the first step: only beam 0 is alive, so the K beams are not
        copies of one another."""
        b, k, n, t, s = (self.batch_size, self.k, self.n_best, self.buffer_length,
                         self.source_length)
        first_beam = tf.one_hot(0, k, on_value=0.0, off_value=_NEG_INF)
        return BeamState(
            t=tf.constant(0, tf.int32),
            inputs=tf.fill([b * k], start_id),
            state=initial_state,
            done=tf.zeros([b], tf.bool),
            alive_log_probs=tf.tile(first_beam[None, :], [b, 1]),
            alive_tokens=tf.zeros([b, k, t], tf.int32),
            alive_alignments=tf.zeros([b, k, t, *self.extra, s], tf.float32),
            alive_coverage=tf.zeros([b, k, s], tf.float32),
            fin_scores=tf.fill([b, n], _NEG_INF),
            fin_log_probs=tf.fill([b, n], _NEG_INF),
            fin_lengths=tf.zeros([b, n], tf.int32),
            fin_tokens=tf.zeros([b, n, t], tf.int32),
            fin_alignments=tf.zeros([b, n, t, *self.extra, s], tf.float32),
        )

    def running(self, beams):
        """Whether the loop goes on: steps are left and some sentence has not ended."""
        return tf.logical_and(beams.t < self.loop_length,
                              tf.logical_not(tf.reduce_all(beams.done)))

    def score(self, log_probs, lengths, coverage):
        """The GNMT score of finished hypotheses (see the module docstring)."""
        scores = log_probs
        if self.use_length_penalty:
            scores = scores / gnmt_length_penalty(lengths, self.length_penalty)
        if self.use_coverage_penalty:
            scores = scores + gnmt_coverage_penalty(coverage, self.coverage_penalty,
                                                    self.source_lengths)
        return scores

    def step(self, beams):
        """One target step: expands the alive beams, keeps the K best that go on and merges
        the best that end into the finished hypotheses."""
        b, k = self.batch_size, self.k
        logits, new_state, step_alignments = self.step_fn(beams.inputs, beams.state, beams.t)
        step_log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocab_size = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(step_log_probs, [b, k, vocab_size])
        step_alignments = _step_alignments(step_alignments, [b, k], self.extra,
                                           self.source_length)  # [B, K, *E, S]
        step_coverage = step_alignments  # [B, K, S]: what the coverage penalty sums
        if self.extra:
            step_coverage = tf.reshape(
                tf.cast(self.coverage_alignments(
                    tf.reshape(step_alignments, [b * k, *self.extra, self.source_length])),
                    tf.float32),
                [b, k, self.source_length])
        num_candidates = 2 * k
        if logits.shape[-1] is not None:
            num_candidates = min(num_candidates, k * logits.shape[-1])
        # Candidates [B, 2K], sorted by accumulated log-prob: 2K of them leave K that do not
        # end even when K of them end.
        totals = beams.alive_log_probs[:, :, None] + step_log_probs
        cand_log_probs, cand_ids = tf.math.top_k(tf.reshape(totals, [b, -1]),
                                                 k=num_candidates)
        cand_parents, cand_tokens = cand_ids // vocab_size, cand_ids % vocab_size
        length = beams.t + 1
        at_max = (length >= self.max_lengths)[:, None]
        cand_finished = tf.logical_or(tf.equal(cand_tokens, self.eos_id), at_max)

        def extend(parents, tokens):
            """Histories [B, M, .] of the parents [B, M] extended with `tokens`."""
            new_alignments = tf.gather(step_alignments, parents, batch_dims=1)
            write = tf.equal(self.time_steps, beams.t)[None, None, :]
            hist_tokens = tf.where(write, tokens[:, :, None],
                                   tf.gather(beams.alive_tokens, parents, batch_dims=1))
            hist_alignments = tf.where(_expand(write, len(self.extra) + 1),
                                       new_alignments[:, :, None],
                                       tf.gather(beams.alive_alignments, parents, batch_dims=1))
            coverage = (tf.gather(beams.alive_coverage, parents, batch_dims=1)
                        + tf.gather(step_coverage, parents, batch_dims=1))
            return hist_tokens, hist_alignments, coverage

        # Alive: the K best candidates that did not end.
        alive_log_probs, selected = tf.math.top_k(
            tf.where(cand_finished, _NEG_INF, cand_log_probs), k=k)
        parents = tf.gather(cand_parents, selected, batch_dims=1)
        next_tokens = tf.gather(cand_tokens, selected, batch_dims=1)
        alive_tokens, alive_alignments, alive_coverage = extend(parents, next_tokens)
        rows = tf.reshape(self.batch_offsets + parents, [-1])
        next_state = tf.nest.map_structure(lambda x: tf.gather(x, rows), new_state)
        next_state = _restore_shapes(next_state, beams.state)

        # Finished: the candidates among the first K that ended (so that beam_width=1 is
        # greedy decoding exactly).
        top_log_probs = cand_log_probs[:, :k]
        top_tokens, top_alignments, top_coverage = extend(cand_parents[:, :k],
                                                          cand_tokens[:, :k])
        is_new = (cand_finished[:, :k] & (top_log_probs > _NEG_INF)
                  & tf.logical_not(beams.done)[:, None])
        lengths = tf.fill(tf.shape(top_log_probs), length)
        top_scores = tf.where(is_new, self.score(top_log_probs, lengths, top_coverage),
                              _NEG_INF)
        fin_scores, merged = tf.math.top_k(tf.concat([beams.fin_scores, top_scores], 1),
                                           k=self.n_best)

        def merge(old, new):
            return tf.gather(tf.concat([old, new], 1), merged, batch_dims=1)

        done = beams.done | at_max[:, 0] | (fin_scores[:, -1] >= self.bound(alive_log_probs,
                                                                           length))
        return BeamState(
            t=length, inputs=tf.reshape(next_tokens, [-1]), state=next_state, done=done,
            alive_log_probs=alive_log_probs, alive_tokens=alive_tokens,
            alive_alignments=alive_alignments, alive_coverage=alive_coverage,
            fin_scores=fin_scores,
            fin_log_probs=merge(beams.fin_log_probs, top_log_probs),
            fin_lengths=merge(beams.fin_lengths, lengths),
            fin_tokens=merge(beams.fin_tokens, top_tokens),
            fin_alignments=merge(beams.fin_alignments, top_alignments),
        )

    def bound(self, alive_log_probs, length):
        """The best score an alive beam of each sentence can still reach: a sentence whose
        n_best-th finished hypothesis scores at least this has ended."""
        bound = alive_log_probs[:, 0]
        if self.use_length_penalty:
            bound = bound / tf.maximum(
                gnmt_length_penalty(length + 1, self.length_penalty),
                gnmt_length_penalty(self.max_lengths, self.length_penalty),
            )
        return bound

    def finalize(self, beams, static_max_length):
        """The finished hypotheses, cut to the longest (or to `static_max_length`)."""
        out_length = (static_max_length if static_max_length is not None
                      else tf.reduce_max(beams.fin_lengths))
        return DecodeOutput(
            tokens=beams.fin_tokens[:, :, :out_length],
            lengths=beams.fin_lengths,
            scores=beams.fin_scores,
            log_probs=beams.fin_log_probs,
            alignments=beams.fin_alignments[:, :, :out_length],
        )


def beam_search(
    step_fn: StepFn,
    initial_state: Any,
    batch_size: Any,
    beam_width: int,
    start_id: Any,
    eos_id: Any,
    max_lengths: Any,
    source_length: Any,
    length_penalty: Any = 0.0,
    coverage_penalty: Any = 0.0,
    n_best: int = 1,
    source_lengths: Any = None,
    static_max_length: int | None = None,
    alignment_dims: Sequence[int] = (),
    coverage_alignments: CoverageFn | None = None,
) -> DecodeOutput:
    """Batched beam search with separate alive and finished hypotheses.

    At step t each of the K alive beams of a sentence is expanded over V and
    the 2K best candidates by accumulated log-prob are kept (at t = 0 only
    beam 0 is alive, so the K beams are not copies). Candidates ending in
    EOS, or reaching the sentence's `max_lengths[b]` (forced to end there),
    join the finished set only if they rank among the first K, so that
    `beam_width=1` reproduces greedy decoding exactly; the K best other
    candidates stay alive. Alive beams are ranked by accumulated log-prob;
    finished hypotheses by the GNMT score (see the module docstring), and the
    `n_best` best of them are kept. A sentence ends when its max length is
    reached or when no alive beam can still beat its n_best-th finished
    hypothesis: the bound is `log P(alive) / max(lp(t + 2), lp(max_length))`,
    valid for a non-negative `coverage_penalty`. The loop stops when every
    sentence has ended.

    The token and alignment histories are carried in the beam state
    (`BeamState`) and re-gathered along the back-pointers at every step, so
    the alignments of a hypothesis are those of its own ancestors.

    Args:
        step_fn: the model's `StepFn`, called with R = B*K rows.
        initial_state: a nest of tensors, each [B*K, ...], already tiled with
            `tile_beams`.
        batch_size: B, an int or int scalar tensor.
        beam_width: K, a positive Python int.
        start_id: int scalar, the first input token.
        eos_id: int scalar, the end-of-sentence id.
        max_lengths: int [B], the maximum number of tokens (EOS included) of
            each sentence; each at least 1.
        source_length: S, an int or int scalar tensor: the last dimension of
            the alignments.
        length_penalty: alpha, float scalar (0 disables it).
        coverage_penalty: beta, non-negative float scalar (0 disables it).
        n_best: N, the number of hypotheses returned per sentence, a Python
            int in [1, K].
        source_lengths: optional int [B], the true source lengths used by the
            coverage penalty; defaults to S for every sentence.
        static_max_length: optional Python int, the size of the time buffers
            and of the T axis of the output; `max_lengths` is clipped to it.
            Needed under XLA (`jit_compile=True`). Without it, T is the
            longest returned length.
        alignment_dims: E, the step alignments' dims between the rows and S
            (Python ints; default none: [R, S]).
        coverage_alignments: with `alignment_dims`, maps the step alignments
            [R, *E, S] to the [R, S] the coverage penalty sums (e.g. the head
            mean of a Transformer's last layer); default: their mean over E.

    Returns:
        A `DecodeOutput` with the N best finished hypotheses of each sentence,
        sorted by score, descending. When fewer than N distinct hypotheses
        exist (a tiny vocabulary and short max lengths), the missing ones
        have length 0 and score and log-prob -inf.

    Raises:
        ValueError: on a bad `beam_width`, `n_best`, `coverage_penalty`,
            `static_max_length` or `alignment_dims`, inputs of the wrong rank,
            or step alignments of another rank.
        tf.errors.InvalidArgumentError: (when run) if a max length is below 1
            or `max_lengths` does not hold `batch_size` entries.
    """
    beam_width = _positive_int(beam_width, "beam_width")
    n_best = _positive_int(n_best, "n_best")
    if n_best > beam_width:
        raise ValueError(
            f"Expected n_best <= beam_width ({beam_width}). Received: n_best={n_best}"
        )
    if isinstance(coverage_penalty, int | float) and coverage_penalty < 0:
        raise ValueError(
            f"Expected coverage_penalty >= 0. Received: coverage_penalty={coverage_penalty}"
        )
    batch_size = _static_or_tensor(batch_size)
    source_length = _source_length(source_length)
    extra = _alignment_dims(alignment_dims)
    if coverage_alignments is None:
        axes = list(range(1, 1 + len(extra)))
        coverage_alignments = lambda x: tf.reduce_mean(x, axis=axes)  # noqa: E731
    max_lengths, buffer_length, loop_length = _prepare_lengths(
        max_lengths, static_max_length, batch_size
    )
    if source_lengths is None:
        source_lengths = tf.fill([batch_size], source_length)
    source_lengths = tf.convert_to_tensor(source_lengths, tf.int32)
    _check_rank(source_lengths, 1, "source_lengths")
    search = _BeamSearch(
        step_fn, batch_size, beam_width, tf.convert_to_tensor(eos_id, tf.int32), max_lengths,
        source_length, length_penalty, coverage_penalty, n_best, source_lengths,
        buffer_length, loop_length, extra, coverage_alignments,
    )
    initial = search.initialize(tf.nest.map_structure(tf.convert_to_tensor, initial_state),
                                tf.convert_to_tensor(start_id, tf.int32))
    [final] = tf.while_loop(
        search.running, lambda beams: [search.step(beams)], [initial],
        shape_invariants=[_relaxed_shapes(initial)],
    )
    return search.finalize(final, static_max_length)


# ----------------------------------------------------------------------------- helpers


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected {name} to be a positive int. Received: {name}={value!r}")
    return value


def _is_static_zero(value):
    static = tf.get_static_value(value) if tf.is_tensor(value) else value
    return static is not None and float(static) == 0.0


def _static_or_tensor(value):
    """A Python int when `value` is known statically, else an int32 scalar tensor."""
    static = tf.get_static_value(value) if tf.is_tensor(value) else value
    if static is not None:
        return int(static)
    return tf.convert_to_tensor(value, tf.int32)


def _source_length(source_length):
    source_length = _static_or_tensor(source_length)
    if isinstance(source_length, int) and source_length < 1:
        raise ValueError(
            f"Expected source_length >= 1. Received: source_length={source_length}"
        )
    return source_length


def _alignment_dims(alignment_dims):
    """E as a tuple of positive Python ints."""
    try:
        dims = tuple(alignment_dims)
    except TypeError:
        dims = None
    if dims is None or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                               for d in dims):
        raise ValueError("Expected alignment_dims to be a sequence of positive ints. "
                         f"Received: alignment_dims={alignment_dims!r}")
    return dims


def _step_alignments(alignments, rows, extra, source_length):
    """The step function's alignments as float32 [*rows, *E, S], their rank checked."""
    alignments = tf.convert_to_tensor(alignments)
    rank = alignments.shape.rank
    if rank is not None and rank != 2 + len(extra):
        raise ValueError(
            f"Expected step_fn's alignments of rank {2 + len(extra)} ([R, *E, S] with "
            f"alignment_dims E={extra}). Received: alignments.shape={alignments.shape}"
        )
    return tf.reshape(tf.cast(alignments, tf.float32), [*rows, *extra, source_length])


def _expand(mask, count):
    """`mask` with `count` trailing axes of size 1 (to broadcast over E and S)."""
    return mask[(Ellipsis,) + (tf.newaxis,) * count]


def _dim(x, axis):
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


def _check_rank(x, rank, name):
    if x.shape.rank is not None and x.shape.rank != rank:
        raise ValueError(
            f"Expected {name} of rank {rank}. Received: {name}.shape={x.shape}"
        )


def _prepare_lengths(max_lengths, static_max_length, batch_size):
    """Validates `max_lengths`; returns it, the buffer length and the loop length."""
    max_lengths = tf.convert_to_tensor(max_lengths, tf.int32)
    _check_rank(max_lengths, 1, "max_lengths")
    static_batch = max_lengths.shape[0]
    if isinstance(batch_size, int) and static_batch is not None and static_batch != batch_size:
        raise ValueError(
            f"Expected max_lengths of shape [{batch_size}]. "
            f"Received: max_lengths.shape={max_lengths.shape}"
        )
    checks = [
        tf.debugging.assert_positive(
            max_lengths, message="Expected max_lengths >= 1. Received: max_lengths="
        ),
        tf.debugging.assert_equal(
            tf.size(max_lengths), batch_size,
            message="Expected max_lengths to hold batch_size entries. Received: size, batch_size=",
        ),
    ]
    with tf.control_dependencies(checks):
        max_lengths = tf.identity(max_lengths)
    if static_max_length is None:
        buffer_length = tf.reduce_max(max_lengths)
    else:
        buffer_length = _positive_int(static_max_length, "static_max_length")
        max_lengths = tf.minimum(max_lengths, buffer_length)
    return max_lengths, buffer_length, tf.reduce_max(max_lengths)


def _restore_shapes(new_state, state):
    """Gives `new_state` the static shapes of `state` (the loop's invariants)."""

    def restore(new, old):
        new = tf.convert_to_tensor(new)
        if new.dtype != old.dtype:
            raise ValueError(
                "Expected step_fn to keep the state dtypes. "
                f"Received: new state dtype={new.dtype}, initial dtype={old.dtype}"
            )
        new.set_shape(old.shape)
        return new

    return tf.nest.map_structure(restore, new_state, state)


def _relaxed_shapes(loop_vars):
    """The loop variables' shapes with the leading (row) axis relaxed for every tensor of rank
    >= 1: gathers along beams lose the step tokens' and the state's, and a batch whose size is
    static (one sentence) would otherwise be fixed while the masks derived from
    `max_lengths` are not."""

    def relax(x):
        return tf.TensorShape([None]).concatenate(x.shape[1:]) if x.shape.rank else x.shape

    return tf.nest.map_structure(relax, loop_vars)
