"""translate.alignment: head choice, words of pieces, hard alignments, Pharaoh and AER, on
hand-made values."""

import numpy as np
import pytest

from translate import alignment
from translate.alignment import GoldAlignment, Heads
from translate.data_error import DataError


def test_heads_parse_check_and_select():
    assert alignment.parse_heads("mean") == Heads("mean")
    assert alignment.parse_heads(" all ") == Heads("all")
    assert alignment.parse_heads("1:3") == Heads("one", 1, 3)
    assert str(Heads("one", 1, 3)) == "1:3"
    for bad in ("", "max", "1", "1:", "-1:0", "1:2:3", "a:b"):
        with pytest.raises(ValueError, match="Expected 'mean', 'all' or 'L:H'"):
            alignment.parse_heads(bad)
    assert alignment.check_heads(Heads("one", 1, 3), (2, 4)) == Heads("one", 1, 3)
    assert alignment.check_heads(Heads("one", 0, 0), ()) == Heads("one", 0, 0)  # the RNN
    for bad, dims in ((Heads("one", 2, 0), (2, 4)), (Heads("one", 0, 4), (2, 4)),
                      (Heads("one", 0, 1), ())):
        with pytest.raises(ValueError, match="out of range|Expected L:H"):
            alignment.check_heads(bad, dims)

    attention = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(alignment.select_heads(attention, Heads("mean")),
                               attention[1].mean(axis=0))
    np.testing.assert_array_equal(alignment.select_heads(attention, Heads("one", 0, 2)),
                                  attention[0, 2])
    assert alignment.select_heads(attention, Heads("all")).shape == (2, 3, 4, 5)
    rnn = attention[0, 0]
    for heads in (Heads("mean"), Heads("all"), Heads("one", 0, 0)):
        np.testing.assert_array_equal(alignment.select_heads(rnn, heads), rnn)


def test_word_ids_of_word_and_subword_pieces():
    assert alignment.word_ids(["Sunday", ",", "March", "</s>"]) == (
        [0, 1, 2, -1], ["Sunday", ",", "March"])
    pieces = ["\u2581Sun", "day", ",", "\u2581Mar", "ch", "\u2581", "21", ",", "</s>"]
    ids, words = alignment.word_ids(pieces, "sentencepiece", "en")
    assert words == ["Sunday", ",", "March", "21", ","]
    # The lone "▁" goes with the next word ("21").
    assert ids == [0, 0, 1, 2, 2, 3, 3, 4, -1]


def test_hard_alignment_sums_source_pieces_and_averages_target_pieces():
    # Target pieces: word 0, word 1 (two pieces), EOS; source pieces: word 0 (two pieces),
    # word 1, EOS.
    attention = np.array([
        [0.3, 0.3, 0.4, 0.0],  # word 0: 0.6 on source word 0 (two pieces) against 0.4
        [0.1, 0.1, 0.2, 0.6],  # word 1, piece 1: the source EOS is left out
        [0.0, 0.1, 0.5, 0.4],
        [0.9, 0.0, 0.0, 0.1],  # target EOS: no word
    ])
    target_ids, source_ids = [0, 1, 1, -1], [0, 0, 1, -1]
    words = alignment.word_attention(attention, target_ids, source_ids, 2, 2)
    np.testing.assert_allclose(words, [[0.6, 0.4], [0.15, 0.35]])
    assert alignment.hard_alignment(attention, target_ids, source_ids) == [(0, 0), (1, 1)]
    assert alignment.hard_alignment(attention[:, -1:], [-1] * 4, [-1]) == []
    with pytest.raises(ValueError, match="Expected attention of shape"):
        alignment.hard_alignment(attention[:3], target_ids, source_ids)


def test_pharaoh_format_and_parse():
    assert alignment.format_pharaoh([(2, 1), (0, 0), (1, 2), (0, 0)]) == "0-0 1-2 2-1"
    gold = alignment.parse_pharaoh(" 0-0 1?2  2-1 ")
    assert gold.sure == {(0, 0), (2, 1)} and gold.possible == {(0, 0), (1, 2), (2, 1)}
    assert alignment.parse_pharaoh("") == GoldAlignment(frozenset(), frozenset())
    for bad in ("0-0 1:2", "0-", "a-1", "0--1"):
        with pytest.raises(ValueError, match="expected links"):
            alignment.parse_pharaoh(bad)


def test_alignment_error_rate_golden_values():
    sure_only = GoldAlignment(frozenset({(0, 0), (1, 1), (2, 2)}),
                              frozenset({(0, 0), (1, 1), (2, 2)}))
    # |A∩S| = 1, |A| = 2, |S| = 3: 1 - 2/5.
    assert alignment.alignment_error_rate([[(0, 0), (1, 2)]], [sure_only]) == pytest.approx(0.6)
    assert alignment.alignment_error_rate([[(0, 0), (1, 1), (2, 2)]], [sure_only]) == 0.0
    # A possible link is no error, a missing sure one is: |A∩S| = 1, |A∩P| = 2, |A| = 2,
    # |S| = 2: 1 - 3/4.
    with_possible = alignment.parse_pharaoh("0-0 1-1 2?1")
    assert alignment.alignment_error_rate([[(0, 0), (2, 1)]], [with_possible]) == (
        pytest.approx(0.25))
    # Corpus counts are summed before the ratio: hits 1 + 1, |A| 2 + 1, |S| 3 + 1: 1 - 4/7.
    one = alignment.parse_pharaoh("0-0")
    assert alignment.alignment_error_rate([[(0, 0), (1, 2)], [(0, 0)]], [sure_only, one]) == (
        pytest.approx(3 / 7))
    assert alignment.alignment_error_rate([[]], [alignment.parse_pharaoh("")]) == 0.0
    with pytest.raises(ValueError, match="as many hypotheses"):
        alignment.alignment_error_rate([[]], [])


def test_read_pharaoh_names_file_and_line(tmp_path):
    path = tmp_path / "gold.align"
    path.write_text("0-0 1-1\n\n2-0\n", encoding="utf-8")
    gold = alignment.read_pharaoh(path, [2, 1, 3], [2, 1, 1])
    assert [g.sure for g in gold] == [{(0, 0), (1, 1)}, set(), {(2, 0)}]
    with pytest.raises(DataError, match=r"gold.align:3: has 3 lines for 2 sentences"):
        alignment.read_pharaoh(path, [2, 1], [2, 1])
    with pytest.raises(DataError, match=r"gold.align:4: has 3 lines for 4 sentences"):
        alignment.read_pharaoh(path, [2, 1, 3, 1], [2, 1, 1, 1])
    with pytest.raises(DataError, match=r"gold.align:3: link 2-0 is out of range: the sentence "
                                         r"has 2 source and 1 target words"):
        alignment.read_pharaoh(path, [2, 1, 2], [2, 1, 1])
    with pytest.raises(DataError, match=r"gold.align:1: link 1-1 is out of range"):
        alignment.read_pharaoh(path, [2, 1, 3], [1, 1, 1])
    path.write_text("0-0\n0 1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gold.align:2: expected links 'i-j'"):
        alignment.read_pharaoh(path)
    with pytest.raises(DataError, match=r"missing.align: cannot read"):
        alignment.read_pharaoh(tmp_path / "missing.align")


def test_piece_links_cover_every_piece_of_linked_words():
    # Source pieces: word 0 in two pieces, word 1, EOS; target: word 0, word 1 in two pieces.
    links = alignment.piece_links([(0, 1), (1, 0)], [0, 0, 1, -1], [0, 1, 1])
    assert links == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 0)]
    assert alignment.piece_links([(0, 0), (5, 0)], [0], [0]) == [(0, 0)]
