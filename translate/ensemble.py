"""`Ensemble`: several trained models decoded as one, their next-token distributions
averaged at every step.

At step t, with the M members' log-probabilities log p_m(y | y_<t, x):

    log p(y | y_<t, x) = log (1/M sum_m p_m(y | y_<t, x))
                       = logsumexp_m log p_m(y | y_<t, x) - log M

the log of the mean probability, as fairseq's `EnsembleModel` computes it. (OpenNMT-py
averages the log-probabilities by default, a geometric mean, and the probabilities with
`--avg_raw_probs`; Marian sums weighted log-probabilities.) The mean of the probabilities
keeps a token that one member is sure of and the others are not; a geometric mean lets any
one member veto it.

The decoders (`translate.decoding`) see an `Ensemble` through the interface they see a model
through, so `translate.translator.Translator` decodes it unchanged, greedily or with beam
search:

* `encode(source)` returns as memory the tuple of the members' `(memory, mask)` pairs, as
  mask the first member's (every member masks the padding of the same source, so the masks
  are equal), and as states the tuple of the members' encoder states;
* `decoding_step(memory, mask)` returns a step function whose state is the tuple of the
  members' states (passed through as they are, whatever their structure), whose "logits"
  are the combined log-probabilities above, and whose alignments are the first member's;
* `decoding_states` builds the members' initial decoding states.

The members share one source and one target tokenizer (`load_models` checks it before
anything is decoded): one source tensor feeds them all, and their output ids mean the same
tokens.
"""

import math
import sys

import tensorflow as tf

from attn_core.errors import UserError


class Ensemble:
    """Decodes several models as one (see the module docstring).

    Args:
        models: the members, `RNNSeq2Seq` or `TransformerSeq2Seq` (they may mix), all with
            the same target vocabulary size.

    Raises:
        ValueError: with no model, or members of different target vocabulary sizes.
    """

    def __init__(self, models):
        self.members = tuple(models)
        if not self.members:
            raise ValueError("Expected at least one model. Received: models=()")
        sizes = [m.config.tgt_vocab_size for m in self.members]
        if len(set(sizes)) > 1:
            raise ValueError(
                "Expected members with one target vocabulary size. "
                f"Received: tgt_vocab_size={sizes}"
            )

    @property
    def attention_dims(self):
        """E of the step alignments: the first member's (its alignments are the ensemble's)."""
        return self.members[0].attention_dims

    def head_mean(self, alignments):
        """The first member's head mean of its alignments [..., *E, S] -> [..., S]."""
        return self.members[0].head_mean(alignments)

    def encode(self, source, training=False):
        """source int32 [B, S] -> (memory, mask bool [B, S], states).

        `memory` is the tuple of the members' `(memory, mask)` pairs, `states` the tuple of
        their encoder states (None for a Transformer), `mask` the first member's.
        """
        encoded = [m.encode(source, training=training) for m in self.members]
        memory = tuple((memory, mask) for memory, mask, _ in encoded)
        return memory, encoded[0][1], tuple(states for _, _, states in encoded)

    def decoding_states(self, encoded_states, member_state):
        """The tuple of the members' initial decoding states.

        Args:
            encoded_states: the `states` of `encode`.
            member_state: `member_state(model, its encoder states)`, the initial decoding
                state of one model (the translator's rule for a single model).
        """
        return tuple(member_state(m, s)
                     for m, s in zip(self.members, encoded_states, strict=True))

    def decoding_step(self, memory, mask, **kwargs):
        """The step function `(tokens [R], states, t) -> (log-probs float32 [R, V], states,
        alignments [R, S])` over the members (see the module docstring).

        Args:
            memory: the `memory` of `encode` (possibly beam-tiled): each member gets its own
                memory and mask from it.
            mask: unused (the first member's mask, which its pair holds too).
            **kwargs: passed to every member's `decoding_step`.
        """
        del mask
        steps = [m.decoding_step(mem, msk, **kwargs)
                 for m, (mem, msk) in zip(self.members, memory, strict=True)]
        log_count = math.log(len(steps))

        def step(tokens, states, t):
            outputs = [fn(tokens, state, t) for fn, state in zip(steps, states, strict=True)]
            log_probs = tf.stack([tf.nn.log_softmax(tf.cast(logits, tf.float32))
                                  for logits, _, _ in outputs])  # [M, R, V]
            combined = tf.reduce_logsumexp(log_probs, axis=0) - log_count
            return combined, tuple(new for _, new, _ in outputs), outputs[0][2]

        return step


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def shared_tokenizers(model_dirs):
    """The source and target tokenizers that the models of `model_dirs` share.

    Reads only the tokenizer files, so it is cheap to call before anything else.

    Args:
        model_dirs: a non-empty list of trained model directories.

    Returns:
        (source tokenizer, target tokenizer) of the first directory.

    Raises:
        UserError: when two directories have different target vocabularies or source
            tokenizers (naming both), or a directory's tokenizers cannot be read.
    """
    from translate import model_dir as nmt_dir

    model_dirs = list(model_dirs)
    if not model_dirs:
        raise UserError("Expected --model_dir. Received: none")
    tokenizers = [nmt_dir.load_tokenizers(d) for d in model_dirs]
    src, tgt = tokenizers[0]
    for other, (other_src, other_tgt) in zip(model_dirs[1:], tokenizers[1:], strict=True):
        if not other_tgt.same_as(tgt):
            raise UserError(f"--model_dir: {model_dirs[0]} and {other} have different target "
                            "vocabularies; the models of an ensemble must share one")
        if not other_src.same_as(src):
            raise UserError(f"--model_dir: {model_dirs[0]} and {other} have different source "
                            "tokenizers; the models of an ensemble must share one")
    return src, tgt


def load_models(model_dirs, average_last=0, log=_stderr):
    """The model of one trained directory, or the `Ensemble` of several.

    The tokenizers of every directory are compared before any model is built.

    Args:
        model_dirs: a non-empty list of model directories (a directory may appear twice).
        average_last: when positive, each model gets the mean weights of its newest
            `average_last` regular checkpoints (`translate.checkpoint_average`) instead of
            its best checkpoint.
        log: where one-line notices go.

    Returns:
        (model or `Ensemble`, source tokenizer, target tokenizer, steps): `steps` holds the
        step of each member's (newest) checkpoint.

    Raises:
        UserError: when a directory is not a trained model, two directories have different
            target vocabularies or source tokenizers, or (with `average_last`) a directory
            keeps too few checkpoints.
    """
    from translate import checkpoint_average
    from translate import model_dir as nmt_dir

    model_dirs = list(model_dirs)
    src, tgt = shared_tokenizers(model_dirs)
    if average_last:
        for d in model_dirs:
            checkpoint_average.last_steps(d, average_last, "--average_last")
    models, steps = [], []
    for d in model_dirs:
        if average_last:
            model, averaged = checkpoint_average.average_checkpoints(
                d, average_last, "--average_last", log=log)
            step = averaged[-1]
        else:
            model, _, _, step = nmt_dir.load_trained(d, log=log)
        models.append(model)
        steps.append(step)
    model = models[0] if len(models) == 1 else Ensemble(models)
    return model, src, tgt, steps
