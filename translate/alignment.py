"""Word alignments from attention: which heads, hard alignments, the Pharaoh format, and AER.

Letters: T target tokens, S source tokens (EOS included in both, as the decoder attends),
L decoder layers, N heads.

- Heads (`parse_heads`): a model's attention is [T, S] (the RNN) or [L, N, T, S] (the
  Transformer, every decoder layer's cross-attention). "mean" is the head mean of the last
  layer (what the decoder's coverage penalty and the SavedModel's `attention` use; the RNN's
  one attention as it is); "L:H" is layer L, head H, both 0-based (the indices of
  `--attention_json`'s arrays); "all" keeps every head (for plots: a grid).
- Words: alignments are between words, and a word is a token of the word-level tokenizer
  (Moses' punctuation split, `translate.tokenizer.word_tokens`). For a word-level model every
  piece is a word; for a subword model the pieces are mapped to the words they overlap in the
  text (`word_ids`). EOS is no word.
- Hard alignments (`hard_alignment`): each target word is linked to the source word that gets
  the most attention from it (the attention of the word's pieces summed over each source
  word's pieces, averaged over the target word's pieces).
- Pharaoh (Moses, fast_align): one line a sentence, links `i-j` of source word i and target
  word j, 0-based, space-separated; a gold file may mark possible links `i?j` (Och & Ney).
- AER (`alignment_error_rate`, Och & Ney 2003): with hypothesis links A, sure links S and
  possible links P (S included), `AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|)`, each count summed
  over the corpus; with sure links only, `1 - 2|A∩S| / (|A| + |S|)`.
"""

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

from translate.data_error import DataError
from translate.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, word_tokens

Link = tuple[int, int]
_HEADS = re.compile(r"(\d+):(\d+)")
_LINK = re.compile(r"(\d+)([-?])(\d+)")
_SENTENCEPIECE_SPACE = "\u2581"
# Pieces that are no word (an unknown word, "<unk>", is one).
_NO_WORD = frozenset(SPECIAL_TOKENS[i] for i in (PAD, BOS, EOS))


@dataclasses.dataclass(frozen=True)
class Heads:
    """Which attention heads make a view of the attention (see the module docstring).

    Attributes:
        kind: "mean", "all" or "one".
        layer: For "one": the 0-based decoder layer.
        head: For "one": the 0-based head.
    """

    kind: str
    layer: int | None = None
    head: int | None = None

    def __str__(self):
        return f"{self.layer}:{self.head}" if self.kind == "one" else self.kind


def parse_heads(value: str) -> Heads:
    """Parses "mean", "all" or "L:H" (0-based layer and head).

    Raises:
        ValueError: For anything else.
    """
    value = str(value).strip()
    if value in ("mean", "all"):
        return Heads(value)
    match = _HEADS.fullmatch(value)
    if not match:
        raise ValueError("Expected 'mean', 'all' or 'L:H' (0-based decoder layer and head, "
                         f"e.g. 1:3). Received: {value!r}")
    return Heads("one", int(match.group(1)), int(match.group(2)))


def check_heads(heads: Heads, attention_dims: Sequence[int]) -> Heads:
    """Checks that a model with decoding alignment dims `attention_dims` has `heads`.

    Args:
        heads: From `parse_heads`.
        attention_dims: (L, N) for a Transformer, () for the RNN (a single attention, which
            "0:0" also names).

    Returns:
        `heads`.

    Raises:
        ValueError: When layer L or head H is out of range.
    """
    if heads.kind != "one":
        return heads
    layers, count = tuple(attention_dims) if attention_dims else (1, 1)
    if heads.layer >= layers or heads.head >= count:
        raise ValueError(f"Expected L:H with L < {layers} and H < {count} (0-based; the model "
                         f"has {layers} decoder layer(s) of {count} head(s)). "
                         f"Received: {heads}")
    return heads


def select_heads(attention, heads: Heads) -> np.ndarray:
    """The view `heads` of a sentence's attention.

    Args:
        attention: [T, S] (the RNN, or a head mean already) or [L, N, T, S].
        heads: From `parse_heads`.

    Returns:
        [T, S] for "mean" and "L:H"; for "all", `attention` as it is.
    """
    attention = np.asarray(attention, np.float32)
    if heads.kind == "all" or attention.ndim == 2:
        return attention
    if heads.kind == "mean":
        return attention[-1].mean(axis=0)
    return attention[heads.layer, heads.head]


def _spans(text: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """The character span of each token in `text`, found left to right (a token that is not
    found, which Moses with `escape=False` does not make, gets an empty span)."""
    spans, position = [], 0
    for token in tokens:
        start = text.find(token, position)
        if start < 0:
            spans.append((position, position))
            continue
        spans.append((start, start + len(token)))
        position = start + len(token)
    return spans


def word_ids(pieces: Sequence[str], kind: str = "word",
             lang: str = "en") -> tuple[list[int], list[str]]:
    """Maps a sentence's pieces to its words.

    Args:
        pieces: The tokenizer's pieces of the sentence (EOS "</s>", BOS and padding included
            or not).
        kind: The tokenizer's kind: "word" (each piece is a word) or "sentencepiece" (pieces
            with "▁" for spaces, mapped to the word-level tokens of their text).
        lang: The language, for the word-level tokens of a subword sentence.

    Returns:
        (the word index of every piece, -1 for EOS, BOS and padding; the words).
    """
    if kind == "word":
        ids, words = [], []
        for piece in pieces:
            if piece in _NO_WORD:
                ids.append(-1)
            else:
                ids.append(len(words))
                words.append(piece)
        return ids, words
    text = "".join(p for p in pieces if p not in _NO_WORD).replace(_SENTENCEPIECE_SPACE, " ")
    words = word_tokens(text, lang)
    word_spans = _spans(text, words)
    ids, position = [], 0
    for piece in pieces:
        if piece in _NO_WORD:
            ids.append(-1)
            continue
        chars = piece.replace(_SENTENCEPIECE_SPACE, " ")
        start, end = position, position + len(chars)
        position = end
        # The word holding the piece's first non-space character; a piece of spaces only
        # goes with the next word (or the last one).
        offset = len(chars) - len(chars.lstrip(" "))
        first = start + offset if offset < len(chars) else end
        ids.append(_word_at(word_spans, first))
    return ids, words


def sentence_words(tokenizer, text: str) -> list[str]:
    """The words of `text` for a model with `tokenizer` (a `translate.tokenizer.Tokenizer`):
    its pieces for a word-level one, else the word-level tokens of the text."""
    return word_ids(tokenizer.pieces(text), tokenizer.kind, tokenizer.lang)[1]


def _word_at(spans, position):
    for index, (start, end) in enumerate(spans):
        if position < end or (start == end and position <= start):
            return index
    return len(spans) - 1


def word_attention(attention, target_ids: Sequence[int], source_ids: Sequence[int],
                   num_target: int, num_source: int) -> np.ndarray:
    """Piece attention [T, S] -> word attention [T_words, S_words]: summed over the pieces of
    each source word, averaged over the pieces of each target word; specials (-1) left out."""
    attention = np.asarray(attention, np.float64)
    if attention.shape != (len(target_ids), len(source_ids)):
        raise ValueError(f"Expected attention of shape [{len(target_ids)}, {len(source_ids)}] "
                         f"(one row a target piece, one column a source piece). Received: "
                         f"attention.shape={attention.shape}")
    source_map = np.zeros((len(source_ids), num_source))
    for piece, word in enumerate(source_ids):
        if word >= 0:
            source_map[piece, word] = 1.0
    target_map = np.zeros((num_target, len(target_ids)))
    for piece, word in enumerate(target_ids):
        if word >= 0:
            target_map[word, piece] = 1.0
    target_map /= np.maximum(target_map.sum(axis=1, keepdims=True), 1.0)
    return target_map @ attention @ source_map


def hard_alignment(attention, target_ids: Sequence[int], source_ids: Sequence[int]) -> list[Link]:
    """The hard word alignment of one sentence's attention.

    Args:
        attention: [T, S], the attention of the target pieces over the source pieces.
        target_ids, source_ids: The word of every piece (`word_ids`), -1 for specials (EOS).

    Returns:
        Links (source word i, target word j), one for every target word (none when the source
        has no word), sorted.
    """
    num_target = max(target_ids, default=-1) + 1
    num_source = max(source_ids, default=-1) + 1
    if not num_target or not num_source:
        return []
    words = word_attention(attention, target_ids, source_ids, num_target, num_source)
    return sorted((int(np.argmax(row)), j) for j, row in enumerate(words))


@dataclasses.dataclass(frozen=True)
class CorpusAlignments:
    """The gold word links of a corpus's pairs, split by split and in the order of its
    `Corpus`: one list of (source word, target word) links a pair.

    Attributes:
        train, dev, test: The links of each split's pairs (train may be None: not made).
    """

    train: list | None
    dev: list
    test: list


def piece_links(links: Iterable[Link], source_ids: Sequence[int],
                target_ids: Sequence[int]) -> list[Link]:
    """Word links -> links of the pieces of the words (every piece of source word i with
    every piece of target word j), with the word of every piece (`word_ids`)."""
    source_pieces: dict[int, list[int]] = {}
    for piece, word in enumerate(source_ids):
        source_pieces.setdefault(word, []).append(piece)
    target_pieces: dict[int, list[int]] = {}
    for piece, word in enumerate(target_ids):
        target_pieces.setdefault(word, []).append(piece)
    return sorted({(p, q) for i, j in links for p in source_pieces.get(i, ())
                   for q in target_pieces.get(j, ())})


def format_pharaoh(links: Iterable[Link]) -> str:
    """Links as a Pharaoh line: "i-j" pairs, sorted, space-separated."""
    return " ".join(f"{i}-{j}" for i, j in sorted(set(links)))


@dataclasses.dataclass(frozen=True)
class GoldAlignment:
    """One sentence's reference links.

    Attributes:
        sure: The sure links S ("i-j").
        possible: The possible links P, which include the sure ones ("i-j" and "i?j").
    """

    sure: frozenset
    possible: frozenset

    @classmethod
    def of_links(cls, links: Iterable[Link]) -> "GoldAlignment":
        """Sure links only (every link is also possible)."""
        links = frozenset((int(i), int(j)) for i, j in links)
        return cls(links, links)


def parse_pharaoh(line: str) -> GoldAlignment:
    """Parses one Pharaoh line ("0-0 1?2 ..."; an empty line has no links).

    Raises:
        ValueError: For a field that is not "i-j" or "i?j".
    """
    sure, possible = set(), set()
    for field in line.split():
        match = _LINK.fullmatch(field)
        if not match:
            raise ValueError(f"expected links 'i-j' (or possible 'i?j'), got {field!r}")
        link = (int(match.group(1)), int(match.group(3)))
        possible.add(link)
        if match.group(2) == "-":
            sure.add(link)
    return GoldAlignment(frozenset(sure), frozenset(possible))


def read_pharaoh(path: str | os.PathLike, source_lengths: Sequence[int] | None = None,
                 target_lengths: Sequence[int] | None = None) -> list[GoldAlignment]:
    """Reads a Pharaoh file and checks it against the sentences it aligns.

    Args:
        path: The file, one line a sentence.
        source_lengths, target_lengths: Optional words a sentence: the file must have as
            many lines, and every link must fall inside its sentence.

    Returns:
        One `GoldAlignment` a line.

    Raises:
        DataError: Naming the file (and line) when it cannot be read, a line is malformed,
            the line count differs or a link is out of range.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise DataError(f"cannot read: {reason}", path=path) from None
    if source_lengths is not None and len(lines) != len(source_lengths):
        raise DataError(f"has {len(lines)} lines for {len(source_lengths)} sentences",
                        path=path, line=min(len(lines), len(source_lengths)) + 1)
    gold = []
    for number, line in enumerate(lines, start=1):
        try:
            links = parse_pharaoh(line)
        except ValueError as error:
            raise DataError(str(error), path=path, line=number) from None
        if source_lengths is not None and target_lengths is not None:
            sources, targets = source_lengths[number - 1], target_lengths[number - 1]
            bad = sorted((i, j) for i, j in links.possible if i >= sources or j >= targets)
            if bad:
                raise DataError(f"link {bad[0][0]}-{bad[0][1]} is out of range: the sentence "
                                f"has {sources} source and {targets} target words (0-based)",
                                path=path, line=number)
        gold.append(links)
    return gold


def alignment_error_rate(hypotheses: Sequence[Iterable[Link]],
                         gold: Sequence[GoldAlignment]) -> float:
    """The corpus AER of Och & Ney (2003) (see the module docstring).

    Args:
        hypotheses: The links A of each sentence.
        gold: The reference of each sentence, as many.

    Returns:
        AER in [0, 1]; 0.0 when neither side has a link.

    Raises:
        ValueError: When the counts of sentences differ.
    """
    if len(hypotheses) != len(gold):
        raise ValueError(f"Expected as many hypotheses as references. Received: "
                         f"{len(hypotheses)} and {len(gold)}")
    hits_sure = hits_possible = size_a = size_s = 0
    for links, reference in zip(hypotheses, gold, strict=True):
        links = set(links)
        hits_sure += len(links & reference.sure)
        hits_possible += len(links & reference.possible)
        size_a += len(links)
        size_s += len(reference.sure)
    if not size_a + size_s:
        return 0.0
    return 1.0 - (hits_sure + hits_possible) / (size_a + size_s)
