"""Tests for translate.corpus and translate.data_error: readers, hold-out, bad input."""

import os
import pathlib
import pickle
import re
import unicodedata

import pytest

from translate.corpus import (
    Corpus,
    load_corpus,
    normalize_text,
    read_parallel,
    read_tsv,
    split_corpus,
    split_files,
)
from translate.data_error import DataError

SPA_ENG = pathlib.Path("/work/shared/data/spa-eng/spa.txt")


def _write(path, text):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _raises_at(path, line, match):
    """Expects a DataError whose message starts with `path:line: ` and contains `match`."""
    prefix = f"{os.fspath(path)}:{line}: " if line else f"{os.fspath(path)}: "
    return pytest.raises(DataError, match="^" + re.escape(prefix) + ".*" + match)


def test_data_error_message_is_one_line_with_location():
    error = DataError("expected at least 2 tab-separated columns, got 1", path="data/train.tsv",
                      line=17)
    assert str(error) == "data/train.tsv:17: expected at least 2 tab-separated columns, got 1"
    assert isinstance(error, ValueError)
    assert str(DataError("a\nb", path=pathlib.Path("x.txt"))) == "x.txt: a b"
    assert str(DataError("split too small")) == "split too small"
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.line) == (str(error), "data/train.tsv", 17)


def test_read_tsv_with_attribution_and_reverse(tmp_path):
    path = _write(
        tmp_path / "spa.txt",
        "Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n"
        "Hi.\tHola.\tCC-BY 2.0\n"
        "Where's  the\u00a0bathroom?\t¿Dónde está el baño?\r\n"
        "\n\n  \n",
    )
    assert read_tsv(path) == [
        ("Go.", "Ve."),
        ("Hi.", "Hola."),
        ("Where's the bathroom?", "¿Dónde está el baño?"),
    ]
    assert read_tsv(path, reverse=True)[0] == ("Ve.", "Go.")


def test_strings_are_nfc_normalized(tmp_path):
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    path = _write(tmp_path / "nfd.tsv", f"{decomposed}\t{decomposed} au lait\n")
    assert read_tsv(path) == [("café", "café au lait")]
    assert normalize_text(f"  {decomposed}\t x ") == "café x"


def test_read_parallel(tmp_path):
    src = _write(tmp_path / "train.en", "Hello.\nGood morning.\n")
    tgt = _write(tmp_path / "train.fr", "Bonjour.\nBonjour.\n\n")
    assert read_parallel(src, tgt) == [("Hello.", "Bonjour."), ("Good morning.", "Bonjour.")]


@pytest.mark.parametrize(
    "content, line, match",
    [
        ("a\tb\nonly one column\nc\td\n", 2, "expected at least 2 tab-separated columns, got 1"),
        ("a\tb\n\t b\n", 2, "empty source"),
        ("a\tb\nc\td\nx\t  \t attribution\n", 3, "empty target"),
        ("a\tb\n\nc\td\n", 2, "empty source"),
        (b"a\tb\nc\td\ncaf\xe9\tcafe\n", 3, "not valid UTF-8"),
    ],
)
def test_bad_tsv_names_file_and_line(tmp_path, content, line, match):
    path = _write(tmp_path / "bad.tsv", content)
    with _raises_at(path, line, match):
        read_tsv(path)


def test_missing_or_empty_file(tmp_path):
    missing = tmp_path / "missing.tsv"
    with _raises_at(missing, None, "cannot read: No such file or directory"):
        read_tsv(missing)
    with _raises_at(tmp_path, None, "cannot read"):
        read_tsv(tmp_path)
    empty = _write(tmp_path / "empty.tsv", "\n\n")
    with _raises_at(empty, None, "no sentence pairs"):
        read_tsv(empty)
    with _raises_at(missing, None, "cannot read"):
        read_parallel(missing, empty)


def test_bad_parallel_files(tmp_path):
    src = _write(tmp_path / "a.en", "one\ntwo\nthree\n")
    short = _write(tmp_path / "a.fr", "un\ndeux\n\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, short)
    message = str(info.value)
    assert message.startswith(f"{src}:3: ") and "\n" not in message
    assert f"{src} has 3 lines" in message and f"{short} has 2" in message

    blank = _write(tmp_path / "b.fr", "un\n\ntrois\n")
    with _raises_at(blank, 2, "empty target"):
        read_parallel(src, blank)
    bad = _write(tmp_path / "c.en", b"one\ntwo\n\xff\xfe\n")
    with _raises_at(bad, 3, "not valid UTF-8"):
        read_parallel(bad, blank)


def _pairs(n, repeats=0):
    pairs = [(f"source {i}", f"target {i}") for i in range(n)]
    pairs += [(f"source {i}", f"other target {i}") for i in range(repeats)]
    return pairs


def test_split_is_seeded_disjoint_and_exact():
    pairs = _pairs(200, repeats=60)
    corpus = split_corpus(pairs, dev_size=20, test_size=30, seed=5)
    assert (len(corpus.dev), len(corpus.test)) == (20, 30)
    assert sorted(corpus.train + corpus.dev + corpus.test) == sorted(pairs)
    train, dev, test = ({s for s, _ in split} for split in (corpus.train, corpus.dev, corpus.test))
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert corpus == split_corpus(pairs, 20, 30, seed=5)
    assert corpus.test != split_corpus(pairs, 20, 30, seed=6).test
    # Each split keeps the original order.
    assert corpus.train == [p for p in pairs if p in set(corpus.train)]
    assert "dev 20 pairs" in corpus.summary() and "0 also in train" in corpus.summary()


def test_split_too_small_raises_data_error():
    with pytest.raises(DataError, match=r"^data.tsv: .*dev_size=5 and test_size=5 .* from 10"):
        split_corpus(_pairs(10), dev_size=5, test_size=5, name="data.tsv")
    # Two sources, each with two pairs: a test set of 1 pair cannot be cut.
    with pytest.raises(DataError, match="test split would be empty"):
        split_corpus(_pairs(2, repeats=2), dev_size=0, test_size=1)
    with pytest.raises(ValueError, match="Received: dev_size=-1"):
        split_corpus(_pairs(10), dev_size=-1, test_size=1)


def test_load_corpus_files_and_hold_out(tmp_path):
    train = _write(tmp_path / "train.tsv", "".join(f"s{i}\tt{i}\n" for i in range(50)))
    dev = _write(tmp_path / "dev.tsv", "d\tD\n")
    src = _write(tmp_path / "test.en", "x\ny\n")
    tgt = _write(tmp_path / "test.fr", "X\nY\n")

    both = load_corpus(train, dev, (src, tgt))
    assert both == Corpus(train=read_tsv(train), dev=[("d", "D")], test=[("x", "X"), ("y", "Y")])
    held = load_corpus(train, dev_size=5, test_size=7, seed=1)
    assert (len(held.train), len(held.dev), len(held.test)) == (38, 5, 7)
    only_dev = load_corpus(train, dev=dev, test_size=4, reverse=True)
    assert only_dev.dev == [("D", "d")] and len(only_dev.test) == 4
    assert len(only_dev.train) == 46 and only_dev.train[0][0].startswith("t")
    with _raises_at(train, None, "train split would be empty"):
        load_corpus(train, dev_size=25, test_size=25)


@pytest.mark.skipif(not SPA_ENG.exists(), reason="the Tatoeba spa-eng file is not here")
def test_reads_the_real_spa_eng_file():
    pairs = read_tsv(SPA_ENG)
    assert len(pairs) == 118_964
    assert pairs[0] == ("Go.", "Ve.")


def test_split_files_from_the_data_flags():
    assert split_files("train", "a.tsv", None, None, train_given=True) == "a.tsv"
    assert split_files("dev", "", "d.en", "d.fr", train_given=True) == ("d.en", "d.fr")
    assert split_files("test", None, None, None, train_given=False) is None
    for args, message in [(("train", "a.tsv", "a.en", None, True), "exclude each other"),
                          (("dev", None, "d.en", None, True), "must be given together"),
                          (("test", "t.tsv", None, None, False), "need training files")]:
        with pytest.raises(DataError, match=message):
            split_files(*args[:4], train_given=args[4])
