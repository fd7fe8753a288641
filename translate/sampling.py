"""Random sampling for decoding (back-translation): temperature, top-k and nucleus (top-p)
filtering, seeded per sentence so that a run can be reproduced.

Letters: B batch, V vocabulary.

A token is drawn from the model's distribution after three transformations, in this order
(that of Hugging Face's `generate` and fairseq's sampling search):

1. temperature: the log-probs are divided by `temperature` (below 1 sharpens, above 1
   flattens);
2. top-k: only the `topk` most likely tokens are kept (ties with the k-th are kept too);
3. top-p (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): only the
   most likely tokens whose probabilities, after steps 1 and 2, add up to `topp` are kept:
   the smallest such set, so the token that crosses `topp` is kept and the most likely token
   always is.

The randomness is `tf.random.stateless_categorical` with, for each sentence, the seed
`stateless_fold_in((seed, key), t)`, where `key` identifies the sentence (its index in the
input) and `t` is the step. A sentence's sample depends only on the seed, its key and its
own log-probs, not on the other sentences of its batch: the same input and seed give the
same output whatever the batch size and the order of the batches.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["Sampler", "filter_log_probs"]

_NEG_INF = float("-inf")


def filter_log_probs(log_probs: Any, topk: int = 0, topp: float = 1.0,
                     temperature: float = 1.0) -> tf.Tensor:
    """The logits that sampling draws from: temperature, then top-k, then top-p.

    Args:
        log_probs: float [B, V], a distribution's log-probabilities (or any logits).
        topk: keep the `topk` most likely tokens (0: all).
        topp: keep the smallest set of most likely tokens whose probability reaches `topp`
            (1.0: all).
        temperature: divides the log-probs; positive.

    Returns:
        float32 [B, V]: `log_probs / temperature`, -inf where a token is filtered out.
    """
    logits = tf.cast(tf.convert_to_tensor(log_probs), tf.float32) / float(temperature)
    vocab = tf.shape(logits)[-1]
    if topk > 0:
        kth = tf.math.top_k(logits, k=tf.minimum(topk, vocab)).values[:, -1:]  # [B, 1]
        logits = tf.where(logits < kth, _NEG_INF, logits)
    if topp < 1.0:
        ranked = tf.math.top_k(logits, k=vocab).values  # [B, V], descending
        probs = tf.nn.softmax(ranked, axis=-1)
        # A token is kept when the tokens ranked before it hold less than topp.
        before = tf.cumsum(probs, axis=-1, exclusive=True)
        kept = tf.logical_or(before < topp, tf.range(vocab)[None, :] == 0)
        threshold = tf.reduce_min(tf.where(kept, ranked, float("inf")), axis=-1,
                                  keepdims=True)  # the least likely kept logit
        logits = tf.where(logits < threshold, _NEG_INF, logits)
    return logits


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Random sampling with temperature, top-k and top-p (see the module docstring).

    With `topk=1`, or a temperature near 0, it picks the argmax, as greedy decoding does.

    Attributes:
        topk: keep the `topk` most likely tokens (0: all).
        topp: keep the smallest set of most likely tokens whose probability reaches `topp`,
            in (0, 1] (1.0: all).
        temperature: divides the log-probs; positive.
        seed: the run's seed; with the sentences' keys it fixes every draw.

    Raises:
        ValueError: on a negative `topk`, a `topp` outside (0, 1] or a `temperature` <= 0.
    """

    topk: int = 0
    topp: float = 1.0
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 0:
            raise ValueError(f"Expected topk to be an int >= 0. Received: topk={self.topk!r}")
        if not 0.0 < self.topp <= 1.0:
            raise ValueError(f"Expected topp in (0, 1]. Received: topp={self.topp!r}")
        if not self.temperature > 0.0:
            raise ValueError(
                f"Expected temperature > 0. Received: temperature={self.temperature!r}")

    def for_sentences(self, keys: Any) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
        """The token picker of a batch, for `decoding.greedy_decode`'s `sampler`.

        Args:
            keys: int [B], one key per sentence (its index in the input); sentences with
                different keys get independent draws.

        Returns:
            `pick(log_probs float [B, V], t int32 []) -> int32 [B]`.
        """
        keys = tf.cast(tf.convert_to_tensor(keys), tf.int64)
        seeds = tf.stack([tf.fill(tf.shape(keys), tf.constant(self.seed, tf.int64)), keys],
                         axis=1)  # [B, 2]

        def pick(log_probs, t):
            logits = filter_log_probs(log_probs, self.topk, self.topp, self.temperature)

            def draw(row):
                row_logits, seed = row
                seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(t, tf.int64))
                return tf.random.stateless_categorical(row_logits[None], 1, seed,
                                                       dtype=tf.int32)[0, 0]

            # One draw per sentence with its own seed, so that a sentence's sample does not
            # depend on its row in the batch (one call over [B, V] would).
            return tf.map_fn(draw, (logits, seeds), fn_output_signature=tf.int32)

        return pick
