"""Tests for translate.unknown_words and the translator's --replace_unknown: golden
replacements, the wiring of a model's alignments, and subword models refused."""

import numpy as np
import pytest

from translate.tokenizer import UNK, Tokenizer
from translate.translator import Translator
from translate.unknown_words import replace_unknown_pieces


def test_replace_unknown_golden():
    target = ["the", "<unk>", "is", "<unk>", "</s>"]
    source = ["Le", "chat", "Zanzibar", "</s>"]
    alignments = np.array([
        [0.7, 0.1, 0.1, 0.1, 0.0],
        [0.1, 0.2, 0.6, 0.1, 0.0],
        [0.2, 0.5, 0.2, 0.1, 0.0],
        [0.1, 0.1, 0.1, 0.7, 0.0],  # the source EOS is never copied; a tie goes first
        [0.1, 0.1, 0.1, 0.7, 0.0],
    ])
    assert replace_unknown_pieces(target, source, alignments) == [
        "the", "Zanzibar", "is", "Le", "</s>"]
    assert target[1] == "<unk>"  # the input is left as it was
    assert replace_unknown_pieces(["<unk>", "</s>"], ["</s>"], np.ones((2, 1))) == [
        "<unk>", "</s>"]
    with pytest.raises(ValueError, match="Expected alignments of shape"):
        replace_unknown_pieces(target, source, alignments[:, :3])


def test_translator_replaces_the_unknown_words_of_a_model(trained_dir):
    """A trained model pushed to say <unk> at every step: each one becomes the source word
    of its step's highest attention."""
    from translate.model_dir import load_trained

    model, src, tgt, _ = load_trained(trained_dir)
    bias = model.output_layer.bias
    bias.assign(bias.numpy() + 50.0 * (np.arange(tgt.vocab_size) == UNK))
    sentences = ["Sunday, March 21, 1999", "twelve"]
    plain = Translator(model, src, tgt).translate(sentences)
    replaced = Translator(model, src, tgt, replace_unknown=True).translate(sentences)
    copied = []
    for [before], [after] in zip(plain, replaced, strict=True):
        assert set(before.target_pieces) == {"<unk>"} and "<unk>" in before.text
        words = after.source_pieces[:-1]
        expected = [words[int(np.argmax(row[:-1]))] for row in after.alignments]
        assert after.target_pieces == expected
        assert after.text == tgt.detokenize(expected) and "<unk>" not in after.text
        copied.append(expected)
    assert copied[1] == ["twelve"] * len(copied[1])
    # Which word each step copies is checked against the argmax above (the source EOS left
    # out); that a moving attention copies different words is the golden test's.
    sentencepiece = Tokenizer.fit(["a b c d", "b c d e"] * 20, "en", kind="sentencepiece",
                                  vocab_size=12)
    with pytest.raises(ValueError, match="kind='sentencepiece'"):
        Translator(model, src, sentencepiece, replace_unknown=True)
