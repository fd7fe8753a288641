"""Tests for translate.builtin_corpus: the offline dates-and-numbers corpus."""

import datetime
import re

import pytest

from translate.builtin_corpus import (
    PAIRS,
    builtin_corpus,
    builtin_pairs,
    format_date_pair,
    format_number_pair,
    gold_alignment,
    gold_alignments,
    recommended_subword,
)
from translate.tokenizer import word_tokens

YEAR = re.compile(r"\b(1[9]\d\d|20\d\d)\b")


@pytest.fixture(scope="module")
def sample():
    return builtin_pairs("en-fr", size=2000, seed=3)


def _is_date(source):
    return YEAR.search(source) is not None


def test_same_seed_same_pairs_other_seed_other_pairs():
    assert builtin_pairs("en-es", 200, seed=7) == builtin_pairs("en-es", 200, seed=7)
    assert builtin_pairs("en-es", 200, seed=7) != builtin_pairs("en-es", 200, seed=8)
    a = builtin_corpus("en-fr", 300, 50, 50, seed=1)
    assert a == builtin_corpus("en-fr", 300, 50, 50, seed=1)


def test_about_half_dates_half_numbers(sample):
    dates = sum(_is_date(source) for source, _ in sample)
    assert 850 <= dates <= 1150
    numbers = [s for s, _ in sample if not _is_date(s)]
    assert all(re.fullmatch(r"[a-z ,-]+", s) for s in numbers)


def test_full_range_of_numbers_and_dates():
    # Every number is drawn from 0..999,999: in 2,000 pairs some number is over 900,000.
    pairs = builtin_pairs("en-es", 2000, seed=3)
    assert any(s.startswith("nine hundred") and "thousand" in s for s, _ in pairs)
    years = [int(m.group(1)) for s, _ in pairs if (m := YEAR.search(s))]
    assert min(years) < 1920 and max(years) > 2080
    styles = {
        "full": sum(bool(re.match(r"[A-Z][a-z]+day, ", s)) for s, _ in pairs),
        "long": sum(bool(re.fullmatch(r"(January|February|March|April|May|June|July|August|"
                                      r"September|October|November|December) \d+, \d{4}", s))
                    for s, _ in pairs),
        "medium": sum(bool(re.fullmatch(r"[A-Z][a-z]{2} \d+, \d{4}", s)) for s, _ in pairs),
    }
    assert all(count > 200 for count in styles.values()), styles


@pytest.mark.parametrize(
    "pair, date_full, date_medium, number",
    [
        (
            "en-fr",
            "dimanche 21 mars 1999",
            "24 févr. 1987",
            "huit cent dix-sept mille huit cent soixante-cinq",
        ),
        (
            "en-de",
            "Sonntag, 21. März 1999",
            "24.02.1987",
            "achthundertsiebzehntausendachthundertfünfundsechzig",
        ),
        (
            "en-es",
            "domingo, 21 de marzo de 1999",
            "24 feb 1987",
            "ochocientos diecisiete mil ochocientos sesenta y cinco",
        ),
    ],
)
def test_golden_pairs(pair, date_full, date_medium, number):
    assert format_date_pair(datetime.date(1999, 3, 21), "full", pair) == (
        "Sunday, March 21, 1999",
        date_full,
    )
    assert format_date_pair(datetime.date(1987, 2, 24), "medium", pair) == (
        "Feb 24, 1987",
        date_medium,
    )
    assert format_number_pair(817_865, pair) == (
        "eight hundred and seventeen thousand, eight hundred and sixty-five",
        number,
    )


def test_splits_are_disjoint_on_the_source_side_with_exact_sizes():
    corpus = builtin_corpus("en-de", train_size=1500, dev_size=100, test_size=100, seed=0)
    assert (len(corpus.train), len(corpus.dev), len(corpus.test)) == (1500, 100, 100)
    train, dev, test = ({s for s, _ in split} for split in (corpus.train, corpus.dev, corpus.test))
    assert len(train) == 1500 and len(dev) == 100 and len(test) == 100
    assert not (train & dev) and not (train & test) and not (dev & test)
    # The test set does not depend on the training size.
    assert builtin_corpus("en-de", 200, 100, 100, seed=0).test == corpus.test


def test_recommended_subword_and_bad_arguments():
    assert [recommended_subword(p) for p in PAIRS] == ["word", "sentencepiece", "word"]
    with pytest.raises(ValueError, match="Received: pair='en-it'"):
        builtin_pairs("en-it", 10)
    with pytest.raises(ValueError, match="Received: pair='fr-en'"):
        recommended_subword("fr-en")
    with pytest.raises(ValueError, match="Received: dev_size=0"):
        builtin_corpus("en-fr", 10, 0, 10)
    with pytest.raises(ValueError, match="Received: train_size=2.5"):
        builtin_corpus("en-fr", 2.5, 10, 10)
    with pytest.raises(ValueError, match="Received: style='short'"):
        format_date_pair(datetime.date(2000, 1, 1), "short")


def _rendered(source, target, pair):
    """The gold links as "target word <- source word" strings, by target word."""
    src, tgt = word_tokens(source, pair[:2]), word_tokens(target, pair[3:])
    links = gold_alignment(source, target, pair)
    return [f"{tgt[j]}<-{src[i]}" for i, j in sorted(links, key=lambda link: link[::-1])]


@pytest.mark.parametrize("pair, make, expected", [
    ("en-fr", lambda p: format_date_pair(datetime.date(1999, 3, 21), "full", p),
     ["dimanche<-Sunday", "21<-21", "mars<-March", "1999<-1999"]),
    ("en-fr", lambda p: format_date_pair(datetime.date(1987, 2, 24), "medium", p),
     ["24<-24", "févr<-Feb", ".<-Feb", "1987<-1987"]),
    ("en-es", lambda p: format_date_pair(datetime.date(1987, 2, 24), "full", p),
     ["martes<-Tuesday", ",<-,", "24<-24", "febrero<-February", "1987<-1987"]),
    ("en-de", lambda p: format_date_pair(datetime.date(1987, 2, 24), "medium", p),
     ["24.02.1987<-Feb", "24.02.1987<-24", "24.02.1987<-1987"]),
    ("en-fr", lambda p: format_number_pair(817865, p),
     ["huit<-eight", "cent<-hundred", "dix-sept<-seventeen", "mille<-thousand", "huit<-eight",
      "cent<-hundred", "soixante-cinq<-sixty-five"]),
    ("en-fr", lambda p: format_number_pair(101071, p),
     ["cent<-one", "cent<-hundred", "un<-one", "mille<-thousand", "soixante<-seventy-one",
      "et<-seventy-one", "onze<-seventy-one"]),
    ("en-es", lambda p: format_number_pair(1100, p),
     ["mil<-one", "mil<-thousand", "cien<-one", "cien<-hundred"]),
    ("en-es", lambda p: format_number_pair(800, p),
     ["ochocientos<-eight", "ochocientos<-hundred"]),
    ("en-de", lambda p: format_number_pair(21, p),
     ["einundzwanzig<-twenty-one"]),
], ids=["fr_full", "fr_medium", "es_full", "de_numeric", "fr_number", "fr_implicit_one",
        "es_implicit_one", "es_fused_hundred", "de_compound"])
def test_gold_alignment_golden(pair, make, expected):
    source, target = make(pair)
    assert _rendered(source, target, pair) == expected


@pytest.mark.parametrize("pair", PAIRS)
def test_every_target_word_but_spanish_de_has_a_gold_link(pair):
    pairs = builtin_pairs(pair, 400, seed=5)
    for (source, target), links in zip(pairs, gold_alignments(pairs, pair), strict=True):
        src, tgt = word_tokens(source, pair[:2]), word_tokens(target, pair[3:])
        assert all(0 <= i < len(src) and 0 <= j < len(tgt) for i, j in links)
        unlinked = [tgt[j] for j in range(len(tgt)) if j not in {j for _, j in links}]
        assert unlinked == (["de"] * len(unlinked) if pair == "en-es" else []), (source, target)
        # Only English "and" and commas stay without a link on the source side.
        assert {src[i] for i in range(len(src)) if i not in {i for i, _ in links}} <= {"and", ","}
