"""Sentences in, translations and their alignments out: greedy decoding, random sampling or
beam search over a trained model (or an `Ensemble` of them), inside `tf.function`."""

import dataclasses

import numpy as np
import tensorflow as tf

from translate import alignment, decoding
from translate.ensemble import Ensemble
from translate.tokenizer import BOS, EOS, PAD
from translate.unknown_words import replace_unknown_pieces


@dataclasses.dataclass
class Translation:
    """One decoded sentence.

    Attributes:
        text: the detokenized translation.
        source_pieces: the source tokens, for plot axes (EOS included).
        target_pieces: the output tokens (EOS included when produced; with
            `replace_unknown`, each `<unk>` replaced as in the text).
        attention: the attention history of this hypothesis (the steps that made its
            tokens, along its own beam): float32 [T, S] for the RNN (or a translator that
            keeps only the head mean), [L, N, T, S] for the Transformer (the cross-attention
            of every decoder layer and head).
        score: the (penalized) score that ranked it.
    """

    text: str
    source_pieces: list
    target_pieces: list
    attention: np.ndarray
    score: float

    @property
    def alignments(self):
        """float32 [T, S]: the head mean of the last layer (the RNN's one attention)."""
        return alignment.select_heads(self.attention, alignment.Heads("mean"))


class Translator:
    """Wraps a trained model and its tokenizers.

    Args:
        model: an `RNNSeq2Seq`, a `TransformerSeq2Seq` or an `Ensemble` of them.
        src_tokenizer, tgt_tokenizer: `translate.tokenizer.Tokenizer`s.
        beam_width: 1 is greedy decoding.
        length_penalty, coverage_penalty: GNMT α and β (beam search only).
        n_best: hypotheses kept per sentence.
        max_ratio, max_extra: the output may be up to
            `max_ratio * source_length + max_extra` tokens long.
        sampler: a `translate.sampling.Sampler` to sample instead of taking the argmax
            (beam_width 1 only); sentence i of a `translate` call with `first_key=k` is
            drawn with the key k + i.
        replace_unknown: replace each `<unk>` of the output by the source token it attends
            to most (`translate.unknown_words`); word-level targets only.
        cache: Decode the Transformer with its key/value caches (one position a step);
            False re-runs its decoder over the prefix at every step, to compare against.
            The RNN's state is its own cache, so it ignores this.
        all_heads: keep every layer's and head's attention (the Transformer's
            `Translation.attention` is [L, N, T, S]); False keeps only the head mean
            ([T, S]), which decodes faster when the heads are not looked at.

    Raises:
        ValueError: on a bad `beam_width` or `n_best`, a sampler with beam search, or
            `replace_unknown` with a subword target tokenizer.
    """

    def __init__(self, model, src_tokenizer, tgt_tokenizer, beam_width=1, length_penalty=0.0,
                 coverage_penalty=0.0, n_best=1, max_ratio=2.0, max_extra=10, sampler=None,
                 replace_unknown=False, cache=True, all_heads=True):
        if beam_width < 1 or n_best < 1 or n_best > beam_width:
            raise ValueError(
                "Expected 1 <= n_best <= beam_width. "
                f"Received: beam_width={beam_width}, n_best={n_best}"
            )
        if sampler is not None and beam_width != 1:
            raise ValueError(
                f"Expected beam_width=1 with a sampler. Received: beam_width={beam_width}")
        if replace_unknown and tgt_tokenizer.kind != "word":
            raise ValueError(
                "Expected a word-level target tokenizer with replace_unknown. "
                f"Received: kind={tgt_tokenizer.kind!r}")
        self.model = model
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.beam_width = beam_width
        self.length_penalty = length_penalty
        self.coverage_penalty = coverage_penalty
        self.n_best = n_best
        self.max_ratio = max_ratio
        self.max_extra = max_extra
        self.sampler = sampler
        self.replace_unknown = replace_unknown
        self.cache = bool(cache)
        self.all_heads = bool(all_heads)
        # E of the decoded alignments [B, N, T, *E, S]: the model's, or none for the head mean.
        self.attention_dims = tuple(model.attention_dims) if all_heads else ()
        # One trace for every batch: without a signature, reduce_retracing traced it for the
        # first batch's shape, then for any shape, then again for a differently sized batch.
        signature = [tf.TensorSpec([None, None], tf.int32)]
        if sampler is not None:
            signature.append(tf.TensorSpec([None], tf.int64))  # the sentences' sample keys
        # No AutoGraph: the loops are explicit tf.while_loops, and converting every Keras call
        # beneath them made the first batch of each run take seconds longer.
        self.decode_batch = tf.function(self._decode_batch, input_signature=signature,
                                        autograph=False)

    def _initial_state(self, states, batch, max_lengths):
        max_length = tf.reduce_max(max_lengths) + 1

        def initial(model, encoded):
            # A model that makes its own step state (the Transformer) rather than
            # continuing from the encoder's (the RNN).
            if hasattr(model, "initial_decoding_state"):
                return model.initial_decoding_state(batch, max_length, cache=self.cache)
            return encoded

        if isinstance(self.model, Ensemble):
            return self.model.decoding_states(states, initial)
        return initial(self.model, states)

    def _step_fn(self, memory, mask):
        """The model's step function; without `all_heads`, its alignments [R, *E, S] reduced
        to their head mean [R, S] at every step."""
        step = self.model.decoding_step(memory, mask, cache=self.cache)
        if self.attention_dims == tuple(self.model.attention_dims):
            return step

        def mean_step(tokens, states, t):
            logits, states, alignments = step(tokens, states, t)
            return logits, states, self.model.head_mean(alignments)

        return mean_step

    def _decode_batch(self, source, keys=None):
        """source int32 [B, S] (EOS-terminated, 0-padded) -> `decoding.DecodeOutput`.

        `keys` (int [B], default 0..B-1) are the sentences' sampling keys."""
        memory, mask, states = self.model.encode(source)
        batch = tf.shape(source)[0]
        source_lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        max_lengths = decoding.max_decode_lengths(
            source_lengths, ratio=self.max_ratio, extra=self.max_extra
        )
        states = self._initial_state(states, batch, max_lengths)
        source_length = tf.shape(source)[1]
        if self.beam_width == 1:
            step = self._step_fn(memory, mask)
            sampler = None
            if self.sampler is not None:
                sampler = self.sampler.for_sentences(tf.range(batch) if keys is None else keys)
            return decoding.greedy_decode(
                step, states, tf.fill([batch], BOS), EOS, max_lengths, source_length,
                sampler=sampler, alignment_dims=self.attention_dims,
            )
        k = self.beam_width
        memory, mask, states = decoding.tile_beams((memory, mask, states), k)
        step = self._step_fn(memory, mask)
        # The coverage penalty sums the head mean, whichever heads are kept.
        return decoding.beam_search(
            step, states, batch, k, BOS, EOS, max_lengths, source_length,
            length_penalty=self.length_penalty, coverage_penalty=self.coverage_penalty,
            n_best=self.n_best, source_lengths=source_lengths,
            alignment_dims=self.attention_dims, coverage_alignments=self.model.head_mean,
        )

    def translate_ids(self, source_ids, batch_size=64, progress=None, first_key=0):
        """Decodes lists of source ids (no EOS) in order; returns per sentence a
        list of `n_best` (token ids, attention [T, S] or [L, N, T, S], score).

        `progress`, if given, is called with the number of sentences decoded so far after
        each batch. With a sampler, sentence i is drawn with the key `first_key + i`, so
        its sample does not depend on the batching."""
        results = []
        order = np.argsort([len(s) for s in source_ids], kind="stable")
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            rows = [list(source_ids[i]) + [EOS] for i in index]
            width = max(len(r) for r in rows)
            source = np.zeros((len(rows), width), np.int32)
            for r, row in enumerate(rows):
                source[r, :len(row)] = row
            if self.sampler is None:
                out = self.decode_batch(tf.constant(source))
            else:
                out = self.decode_batch(tf.constant(source),
                                        tf.constant(first_key + index, tf.int64))
            tokens, lengths = out.tokens.numpy(), out.lengths.numpy()
            scores, alignments = out.scores.numpy(), out.alignments.numpy()
            for r, i in enumerate(index):
                hyps = []
                for n in range(tokens.shape[1]):
                    length = int(lengths[r, n])
                    # [T, *E, S] -> [*E, T, S]
                    attention = np.moveaxis(alignments[r, n, :length, ..., :len(rows[r])], 0, -2)
                    hyps.append((tokens[r, n, :length].tolist(), attention,
                                 float(scores[r, n])))
                results.append((int(i), hyps))
            if progress is not None:
                progress(len(results))
        results.sort(key=lambda item: item[0])
        return [hyps for _, hyps in results]

    def word_alignment(self, translation, heads=None):
        """The hard word alignment of a `Translation`: links (source word, target word),
        0-based, EOS left out (see `translate.alignment`).

        Args:
            translation: one of `translate`'s.
            heads: an `alignment.Heads`: "L:H" or the head mean (the default; "all" too).
        """
        heads = heads if heads is not None and heads.kind == "one" else alignment.Heads("mean")
        src, tgt = self.src_tokenizer, self.tgt_tokenizer
        source_ids, _ = alignment.word_ids(translation.source_pieces, src.kind, src.lang)
        target_ids, _ = alignment.word_ids(translation.target_pieces, tgt.kind, tgt.lang)
        return alignment.hard_alignment(alignment.select_heads(translation.attention, heads),
                                        target_ids, source_ids)

    def alignment_error_rate(self, translations, gold, heads=None):
        """The corpus AER of the hard word alignments of `translations` (one a sentence)
        against `gold` (`alignment.GoldAlignment`s, as many); `heads` as for
        `word_alignment`."""
        return alignment.alignment_error_rate(
            [self.word_alignment(t, heads) for t in translations], gold)

    def translate(self, sentences, batch_size=64, progress=None, first_key=0):
        """Translates strings; returns, per sentence, its `n_best` `Translation`s.

        `progress` and `first_key` are as for `translate_ids`."""
        source_ids = [self.src_tokenizer.encode(s) for s in sentences]
        out = []
        decoded = self.translate_ids(source_ids, batch_size, progress=progress,
                                     first_key=first_key)
        for sentence, hyps in zip(sentences, decoded, strict=True):
            source_pieces = self.src_tokenizer.pieces(sentence) + ["</s>"]
            out.append([
                self._translation(ids, source_pieces, alignments, score)
                for ids, alignments, score in hyps
            ])
        return out

    def _translation(self, ids, source_pieces, attention, score):
        pieces = [self.tgt_tokenizer.id_to_piece(i) for i in ids]
        if not self.replace_unknown:
            text = self.tgt_tokenizer.decode(ids)
        else:
            head_mean = alignment.select_heads(attention, alignment.Heads("mean"))  # [T, S]
            pieces = replace_unknown_pieces(pieces, source_pieces, head_mean)
            text = self.tgt_tokenizer.detokenize(
                [p for i, p in zip(ids, pieces, strict=True) if i not in (PAD, BOS, EOS)])
        return Translation(text=text, source_pieces=source_pieces, target_pieces=pieces,
                           attention=attention, score=score)
