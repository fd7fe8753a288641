"""Tests for translate.ensemble: an ensemble of a model with itself decodes as the model
does, the step log-probabilities are the log of the members' mean probability, RNN and
Transformer members mix, and models of other vocabularies are refused.

Letters: B batch, K beam width, S source length, V vocabulary.
"""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from translate_tools import run_tool

from attn_core.errors import UserError
from translate.ensemble import Ensemble, load_models, shared_tokenizers
from translate.model_config import ModelConfig
from translate.model_dir import load_trained
from translate.tokenizer import BOS, Tokenizer
from translate.trainer import build_model
from translate.translator import Translator

SRC_VOCAB, TGT_VOCAB = 40, 30
SOURCE = tf.constant([[5, 6, 7, 2], [8, 9, 2, 0], [10, 11, 12, 2]])  # EOS-terminated, padded


def _model(architecture, seed, **kwargs):
    """A small model with random weights (a spread distribution, not a trained one)."""
    config = ModelConfig(architecture=architecture, units=16, embedding_dim=8, ff_dim=16,
                         heads=2, dropout=0.0, src_vocab_size=SRC_VOCAB,
                         tgt_vocab_size=kwargs.pop("tgt_vocab_size", TGT_VOCAB), **kwargs)
    tf.keras.utils.set_random_seed(seed)
    model = build_model(config)
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    return model


def _decode(model, beam_width):
    # decode_batch uses no tokenizer.
    translator = Translator(model, None, None, beam_width=beam_width, n_best=beam_width)
    return {k: v.numpy() for k, v in vars(translator.decode_batch(SOURCE)).items()}


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_an_ensemble_of_a_model_with_itself_decodes_as_the_model(architecture):
    model = _model(architecture, seed=1)
    for beam_width in (1, 3):
        alone = _decode(model, beam_width)
        both = _decode(Ensemble([model, model]), beam_width)
        np.testing.assert_array_equal(both["tokens"], alone["tokens"])
        np.testing.assert_array_equal(both["lengths"], alone["lengths"])
        np.testing.assert_allclose(both["scores"], alone["scores"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(both["alignments"], alone["alignments"], atol=1e-6)


def test_step_log_probs_are_the_log_of_the_mean_probability():
    """One step of an RNN + Transformer + RNN ensemble, against NumPy on the members'
    own steps."""
    members = [_model("rnn", seed=1), _model("transformer", seed=2),
               _model("rnn", seed=3, cell="lstm")]
    ensemble = Ensemble(members)
    memory, mask, states = ensemble.encode(SOURCE)
    np.testing.assert_array_equal(mask, SOURCE.numpy() != 0)
    batch = SOURCE.shape[0]

    def initial(model, encoded):
        if hasattr(model, "initial_decoding_state"):
            return model.initial_decoding_state(batch, 5)
        return encoded

    state = ensemble.decoding_states(states, initial)
    step = ensemble.decoding_step(memory, mask)
    tokens = tf.fill([batch], BOS)
    combined, new_state, alignments = step(tokens, state, tf.constant(0))
    log_probs, first_alignments = [], None
    for model, (mem, msk), member_state in zip(members, memory, state, strict=True):
        logits, new, member_alignments = model.decoding_step(mem, msk)(tokens, member_state,
                                                                       tf.constant(0))
        log_probs.append(tf.nn.log_softmax(logits).numpy().astype(np.float64))
        first_alignments = member_alignments if first_alignments is None else first_alignments
    expected = np.log(np.mean(np.exp(log_probs), axis=0))
    np.testing.assert_allclose(combined, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(log_probs[0], log_probs[1], atol=1e-3)  # members do differ
    np.testing.assert_allclose(alignments, first_alignments, atol=1e-6)
    tf.nest.assert_same_structure(new_state, state)

    # The whole ensemble decodes, greedy and beam: valid tokens, each hypothesis ended by
    # EOS or its max length.
    for beam_width in (1, 2):
        out = _decode(ensemble, beam_width)
        assert out["tokens"].max() < TGT_VOCAB and out["tokens"].min() >= 0
        assert (out["lengths"] >= 1).all() and np.isfinite(out["scores"]).all()


def test_members_of_other_vocabularies_are_refused(tmp_path, trained_dir):
    with pytest.raises(ValueError, match=r"tgt_vocab_size=\[30, 31\]"):
        Ensemble([_model("rnn", 1), _model("rnn", 2, tgt_vocab_size=31)])
    other = tmp_path / "other"
    shutil.copytree(trained_dir, other)
    target = Tokenizer.load(other, "target")
    vocab = [target.id_to_piece(i) for i in range(target.vocab_size)]
    vocab[-1] = "not-a-word"
    Tokenizer("word", target.lang, vocab=vocab).save(other, "target")
    assert shared_tokenizers([trained_dir, trained_dir])[1].same_as(target)
    with pytest.raises(UserError, match=f"{trained_dir} and {other} have different target"):
        load_models([trained_dir, other])


def test_an_exported_ensemble_holds_every_member(tmp_path, trained_dir):
    result = run_tool("translate.export", f"--model_dir={trained_dir},{trained_dir}",
                      f"--export_dir={tmp_path}/export", "--beam_width=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exported the ensemble of steps ")
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    assert len(loaded.variables) == 2 * len(load_trained(trained_dir)[0].variables)
    out = loaded.signatures["translate"](sentences=tf.constant(["May 3, 1950", "twelve"]))
    assert out["translation"].shape == (2,) and out["attention"].shape[0] == 2
