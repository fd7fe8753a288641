"""The Transformer's cached decoding (one position a step, key/value caches) against the
uncached one (the decoder re-run over the prefix) on a trained model: greedy and beam search
give the same hypotheses, the caches follow the beams when they swap parents, and the
exported SavedModel decodes with the caches."""

import keras
import numpy as np
import pytest

from translate import decoding
from translate.tokenizer import BOS, EOS


@pytest.fixture(scope="module")
def loaded(trained_transformer):
    """(model, source tokenizer, target tokenizer, source sentences)."""
    from translate.model_dir import load_trained

    model_dir, data = trained_transformer
    model, src, tgt, _ = load_trained(model_dir, log=lambda line: None)
    sentences = [s for s, _ in data.test + data.dev + data.train[:16]]
    return model, src, tgt, sentences


def _decode(model, src, tgt, sentences, cache, **kwargs):
    from translate.translator import Translator

    translator = Translator(model, src, tgt, cache=cache, **kwargs)
    return translator.translate_ids([src.encode(s) for s in sentences], batch_size=16)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"beam_width": 5, "n_best": 5, "length_penalty": 0.6, "coverage_penalty": 0.2}],
    ids=["greedy", "beam5"],
)
def test_cached_and_uncached_decoding_give_the_same_hypotheses(loaded, kwargs):
    model, src, tgt, sentences = loaded
    cached = _decode(model, src, tgt, sentences, True, **kwargs)
    uncached = _decode(model, src, tgt, sentences, False, **kwargs)
    assert len(cached) == len(sentences)
    for sentence, hyps, expected in zip(sentences, cached, uncached, strict=True):
        assert len(hyps) == len(expected) == kwargs.get("n_best", 1)
        for (tokens, alignments, score), (want_tokens, want_alignments, want_score) in zip(
                hyps, expected, strict=True):
            assert tokens == want_tokens, sentence
            np.testing.assert_allclose(score, want_score, rtol=1e-5, atol=1e-5,
                                       err_msg=sentence)
            np.testing.assert_allclose(alignments, want_alignments, atol=1e-5,
                                       err_msg=sentence)
    # The model has learned something: most sentences end with EOS well before the limit.
    ended = [hyps[0][0][-1] == EOS for hyps in cached]
    assert np.mean(ended) > 0.8


def test_the_caches_follow_the_beams_when_they_swap_parents(loaded):
    """Beam search run eagerly with a step that checks, before each step, that the first
    layer's self-attention cache holds the keys and values of each row's own prefix (the
    state is gathered along the back-pointers), and counts the steps where some row's prefix
    came from another beam."""
    import tensorflow as tf

    model, src, _, sentences = loaded
    rows = [src.encode(s) + [EOS] for s in sentences[:16]]
    source = np.zeros((len(rows), max(map(len, rows))), np.int32)
    for r, row in enumerate(rows):
        source[r, :len(row)] = row
    k = 5
    memory, mask, _ = model.encode(tf.constant(source))
    max_lengths = decoding.max_decode_lengths(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    memory, mask = decoding.tile_beams((memory, mask), k)
    state = model.initial_decoding_state(len(rows) * k, int(tf.reduce_max(max_lengths)) + 1)
    step = model.decoding_step(memory, mask)
    first = model.decoder_blocks[0]
    seen = {"steps": 0, "reordered": 0}

    def checked_step(tokens, state, t):
        t_now = int(t)
        prefix = state[0].numpy()
        if t_now > 0:
            seen["reordered"] += int(np.any(prefix[:, :t_now] != seen["prefix"][:, :t_now]))
            normed = first.self_norm(model._embed(model.tgt_embedding, prefix[:, :t_now], False))
            expected = first.self_attention.compute_cache(normed)  # [R, 2, t, N, K]
            np.testing.assert_allclose(state[1].numpy()[:, :, :t_now], expected.numpy(),
                                       rtol=1e-4, atol=1e-5)
            assert np.all(state[1].numpy()[:, :, t_now:] == 0.0)
        logits, new_state, alignments = step(tokens, state, t)
        seen["prefix"] = new_state[0].numpy()
        seen["steps"] += 1
        return logits, new_state, alignments

    out = decoding.beam_search(checked_step, state, len(rows), k, BOS, EOS, max_lengths,
                               source.shape[1], alignment_dims=model.attention_dims)
    assert seen["steps"] > 3 and seen["reordered"] > 0, seen
    assert np.all(np.isfinite(out.scores.numpy()))


@pytest.mark.parametrize("policy,beam_width", [("mixed_float16", 1), ("mixed_bfloat16", 5)])
def test_cached_decoding_under_a_mixed_policy(trained_transformer, policy, beam_width):
    """The caches stay in the compute dtype through the decoding loop; the hypotheses are
    close to the uncached ones of the same policy (16-bit sums are not the same sums)."""
    from translate.model_dir import load_trained

    model_dir, data = trained_transformer
    keras.config.set_dtype_policy(policy)
    model, src, tgt, _ = load_trained(model_dir, log=lambda line: None)
    state = model.initial_decoding_state(2, 4)
    dtypes = [keras.backend.standardize_dtype(x.dtype) for x in state[1:]]
    assert dtypes == [policy.split("_")[1]] * len(model.decoder_blocks)
    sentences = [s for s, _ in data.test[:12]]
    cached = _decode(model, src, tgt, sentences, True, beam_width=beam_width)
    uncached = _decode(model, src, tgt, sentences, False, beam_width=beam_width)
    same = [c[0][0] == u[0][0] for c, u in zip(cached, uncached, strict=True)]
    assert np.mean(same) >= 0.75
    assert all(np.isfinite(hyps[0][2]) for hyps in cached)


def test_the_exported_transformer_decodes_as_the_translator(loaded, tmp_path):
    import tensorflow as tf

    from translate.export import build_archive

    model, src, tgt, sentences = loaded
    sentences = sentences[:6]
    build_archive(model, src, tgt, beam_width=3).write_out(str(tmp_path / "export"),
                                                           verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "export"))
    served = exported.signatures["translate"](sentences=tf.constant(sentences))
    attention = served["attention"].numpy()
    # The `translate` signature's attention is the head mean.
    expected = _decode(model, src, tgt, sentences, False, beam_width=3, all_heads=False)
    for i, [(tokens, alignments, _)] in enumerate(expected):
        np.testing.assert_allclose(attention[i, :len(tokens), :alignments.shape[1]], alignments,
                                   atol=1e-5)
        assert np.all(attention[i, len(tokens):] == 0.0)
    # `translate_all_heads`: the same translations, and every layer's and head's attention
    # [N, L, H, T, S], whose last layer's head mean is `translate`'s.
    heads = exported.signatures["translate_all_heads"](sentences=tf.constant(sentences))
    np.testing.assert_array_equal(heads["translation"], served["translation"])
    n, t, s = attention.shape
    assert heads["attention"].shape == (n, 2, 4, t, s)
    np.testing.assert_allclose(np.asarray(heads["attention"])[:, -1].mean(axis=1), attention,
                               atol=1e-6)
