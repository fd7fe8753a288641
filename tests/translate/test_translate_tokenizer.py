"""Tests for translate.tokenizer: word level (Moses) and SentencePiece."""

import json

import numpy as np
import pytest

from translate.builtin_corpus import builtin_pairs
from translate.data_error import DataError
from translate.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Tokenizer

ENGLISH = [
    "Hello, world! It's 5 o'clock.",
    "Tom isn't here; he left at 3:20.",
    '"Really?" she asked.',
    "I don't like cheese, Mary.",
    "Hello again, Tom.",
]
SPANISH = [
    "¿Dónde está el baño?",
    "¡Qué bien, señor Pérez!",
    "El niño comió una manzana.",
    "«Ya lo sé», dijo él.",
]


@pytest.fixture(scope="module")
def english():
    return Tokenizer.fit(ENGLISH, lang="en")


@pytest.fixture(scope="module")
def spanish():
    return Tokenizer.fit(SPANISH, lang="es")


@pytest.fixture(scope="module")
def pieces_tokenizer():
    texts = [t for _, t in builtin_pairs("en-es", 400, seed=0)] + SPANISH
    return Tokenizer.fit(texts, lang="es", kind="sentencepiece", vocab_size=300)


def test_special_ids():
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert SPECIAL_TOKENS == ("<pad>", "<s>", "</s>", "<unk>")


def test_word_round_trip_splits_punctuation_and_keeps_case(english, spanish):
    assert english.pieces(ENGLISH[0]) == [
        "Hello", ",", "world", "!", "It", "'s", "5", "o", "'clock", ".",
    ]
    for text in ENGLISH:
        ids = english.encode(text)
        assert UNK not in ids
        assert english.decode(ids) == text
    assert spanish.pieces(SPANISH[0]) == ["¿", "Dónde", "está", "el", "baño", "?"]
    for text in SPANISH:
        assert spanish.decode(spanish.encode(text)) == text
    assert english.encode("hello") == [UNK]  # Case is kept: "Hello" is known, "hello" is not.


def test_decode_stops_at_eos_and_skips_pad_and_bos(english):
    ids = english.encode("Hello, world!")
    assert english.decode([BOS] + ids + [EOS] + english.encode("Tom") + [PAD]) == "Hello, world!"
    assert english.decode(np.array([BOS, *ids, PAD, PAD], np.int32)) == "Hello, world!"
    assert english.decode([EOS, *ids]) == ""
    assert english.ids_to_pieces([BOS, *ids[:2], EOS]) == ["<s>", "Hello", ",", "</s>"]


def test_unknown_words_get_unk(english):
    ids = english.encode("Hello, Zanzibar!")
    assert ids[2] == UNK and UNK not in ids[:2] + ids[3:]
    assert english.decode(ids) == "Hello, <unk>!"
    assert english.pieces("Hello, Zanzibar!")[2] == "Zanzibar"


def test_vocab_is_by_frequency_then_alphabetical_and_capped():
    tok = Tokenizer.fit(["b a c a", "c a d"], lang="en")
    assert tok.ids_to_pieces(range(tok.vocab_size)) == [*SPECIAL_TOKENS, "a", "c", "b", "d"]
    capped = Tokenizer.fit(["b a c a", "c a d"], lang="en", vocab_size=6)
    assert capped.vocab_size == 6 and capped.encode("a c b d") == [4, 5, UNK, UNK]
    frequent = Tokenizer.fit(["b a c a", "c a d"], lang="en", min_count=2)
    assert frequent.vocab_size == 6
    with pytest.raises(ValueError, match="Received: vocab_size=4"):
        Tokenizer.fit(["a"], lang="en", vocab_size=4)
    with pytest.raises(ValueError, match="Received: kind='char'"):
        Tokenizer.fit(["a"], lang="en", kind="char")


def test_encode_batch_matches_encode(spanish):
    texts = SPANISH + SPANISH[:2] + ["Él no está."]
    assert spanish.encode_batch(texts) == [spanish.encode(t) for t in texts]
    batch = spanish.encode_batch(texts)
    batch[0].append(99)  # Rows are independent lists.
    assert spanish.encode(SPANISH[0])[-1] != 99


def test_sentencepiece_trains_encodes_and_round_trips(pieces_tokenizer):
    tok = pieces_tokenizer
    assert tok.kind == "sentencepiece" and 40 < tok.vocab_size <= 300
    assert tok.ids_to_pieces(range(4)) == list(SPECIAL_TOKENS)
    for text in ["novecientos noventa y nueve mil", "domingo, 21 de marzo de 1999", *SPANISH]:
        ids = tok.encode(text)
        assert ids and min(ids) >= 4
        assert tok.decode([BOS, *ids, EOS, 7, 8]) == text
        assert len(tok.pieces(text)) == len(ids)
    assert tok.encode_batch(SPANISH) == [tok.encode(t) for t in SPANISH]


@pytest.mark.parametrize("kind", ["word", "sentencepiece"])
def test_save_load_round_trip(tmp_path, kind, spanish, pieces_tokenizer):
    tok = spanish if kind == "word" else pieces_tokenizer
    path = tok.save(tmp_path, "target")
    assert path == tmp_path / "target.tokenizer.json"
    assert (tmp_path / "target.model").exists() == (kind == "sentencepiece")
    loaded = Tokenizer.load(tmp_path, "target")
    assert (loaded.kind, loaded.lang, loaded.vocab_size) == (kind, "es", tok.vocab_size)
    for text in SPANISH + ["Zanzíbar y Pérez."]:
        assert loaded.encode(text) == tok.encode(text)
        assert loaded.decode(loaded.encode(text)) == tok.decode(tok.encode(text))


def test_load_errors_are_data_errors(tmp_path, spanish):
    with pytest.raises(DataError, match=r"source\.tokenizer\.json: cannot read"):
        Tokenizer.load(tmp_path, "source")
    (tmp_path / "bad.tokenizer.json").write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.tokenizer\.json: not a tokenizer file"):
        Tokenizer.load(tmp_path, "bad")
    spanish.save(tmp_path, "word")
    meta = json.loads((tmp_path / "word.tokenizer.json").read_text())
    meta["tokens"] = meta["tokens"][2:]
    (tmp_path / "word.tokenizer.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"word\.tokenizer\.json: not a valid tokenizer"):
        Tokenizer.load(tmp_path, "word")
