"""The built-in corpus: dates and numbers written out in two languages, made offline.

Half the pairs are dates, half are numbers:

- a date drawn uniformly from 1900-01-01 to 2099-12-31, written in one of the CLDR `full`,
  `long` or `medium` formats (Babel), the same format on both sides:
  "Sunday, March 21, 1999" -> "dimanche 21 mars 1999", "Feb 24, 1987" -> "24 févr. 1987";
- an integer drawn uniformly from 0 to 999,999, spelled out by `num2words`:
  "eight hundred and seventeen thousand, eight hundred and sixty-five" ->
  "huit cent dix-sept mille huit cent soixante-cinq".

It needs no download, is deterministic from its seed, and is hard enough to show attention
at work (the French number words come in a different order from the English ones, and dates
reorder day and month).

German writes a number as one compound word (817,865 is
"achthundertsiebzehntausendachthundertfünfundsechzig"), so the German side has about as many
distinct "words" as numbers and a word-level vocabulary cannot cover it: use subwords there
(`recommended_subword`).

Gold word alignments (`gold_alignment`): the generator knows what every target word renders,
so each pair comes with the links (source word i, target word j) of the words that render the
same thing, a word being a token of the word-level tokenizer (`tokenizer.word_tokens`, Moses'
punctuation split):

- dates: the weekday, month, day and year words (an abbreviated month's period too:
  "févr ." <- "Feb"); a punctuation token links to the same punctuation after the same field
  in the other language (the comma after the weekday in English and Spanish); words of
  neither (Spanish "de") have no link;
- numbers: each part of the number, in its group (thousands or units): the hundreds digit,
  the hundred, the tens and units (all the words of "soixante et onze" <- "seventy-one"),
  the thousand. A word that renders a part the other language leaves implicit links to it too
  ("mille" <- "one thousand", "cent" <- "one hundred"); a German compound number links to
  every number word. English "and" and the comma after "thousand" have no link.
"""

import datetime
import re
from collections.abc import Callable, Iterator, Sequence

import babel
import babel.dates
import numpy as np
from num2words import num2words

from translate.corpus import Corpus, Pair, check_count, normalize_text
from translate.tokenizer import word_tokens

PAIRS = ("en-fr", "en-de", "en-es")
STYLES = ("full", "long", "medium")
FIRST_DAY = datetime.date(1900, 1, 1)
LAST_DAY = datetime.date(2099, 12, 31)
MAX_NUMBER = 999_999

_DAYS = (LAST_DAY - FIRST_DAY).days + 1
_LOCALES: dict[str, babel.Locale] = {}


def _languages(pair: str) -> tuple[str, str]:
    if pair not in PAIRS:
        raise ValueError(f"Expected `pair` to be one of {PAIRS}. Received: pair={pair!r}")
    source, target = pair.split("-")
    return source, target


def _locale(language: str) -> babel.Locale:
    if language not in _LOCALES:
        _LOCALES[language] = babel.Locale.parse(language)
    return _LOCALES[language]


def recommended_subword(pair: str) -> str:
    """Returns the tokenizer kind that suits `pair`: "sentencepiece" for en-de, whose numbers
    are single compound words, else "word".

    Raises:
        ValueError: If `pair` is not one of `PAIRS`.
    """
    _languages(pair)
    return "sentencepiece" if pair == "en-de" else "word"


def format_date_pair(day: datetime.date, style: str, pair: str = "en-fr") -> Pair:
    """Writes `day` in the CLDR `style` ("full", "long" or "medium") of both languages.

    >>> format_date_pair(datetime.date(1999, 3, 21), "full")
    ('Sunday, March 21, 1999', 'dimanche 21 mars 1999')

    Raises:
        ValueError: If `style` or `pair` is unknown.
    """
    if style not in STYLES:
        raise ValueError(f"Expected `style` to be one of {STYLES}. Received: style={style!r}")
    return tuple(  # type: ignore[return-value]
        normalize_text(babel.dates.format_date(day, style, locale=_locale(language)))
        for language in _languages(pair)
    )


def format_number_pair(number: int, pair: str = "en-fr") -> Pair:
    """Spells `number` out in both languages with `num2words`.

    >>> format_number_pair(21)
    ('twenty-one', 'vingt et un')

    Raises:
        ValueError: If `pair` is unknown.
    """
    return tuple(  # type: ignore[return-value]
        normalize_text(num2words(int(number), lang=language)) for language in _languages(pair)
    )


def _stream(pair: str, seed: int) -> Iterator[Pair]:
    """Yields random pairs forever, deterministically from `seed`."""
    _languages(pair)
    rng = np.random.default_rng(seed)
    while True:
        if rng.random() < 0.5:
            day = FIRST_DAY + datetime.timedelta(days=int(rng.integers(_DAYS)))
            yield format_date_pair(day, STYLES[int(rng.integers(len(STYLES)))], pair)
        else:
            yield format_number_pair(int(rng.integers(MAX_NUMBER + 1)), pair)


def builtin_pairs(pair: str = "en-fr", size: int = 1000, seed: int = 0) -> list[Pair]:
    """Draws `size` random date and number pairs (repeats possible).

    Args:
        pair: "en-fr", "en-de" or "en-es" (source-target).
        size: How many pairs.
        seed: Seeds the draw: the same seed gives the same pairs.

    Returns:
        (source, target) pairs, about half dates and half numbers.

    Raises:
        ValueError: If `pair` is unknown or `size` is not a positive integer.
    """
    size = check_count("size", size, minimum=1)
    stream = _stream(pair, seed)
    return [next(stream) for _ in range(size)]


def builtin_corpus(
    pair: str = "en-fr",
    train_size: int = 20000,
    dev_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Corpus:
    """Makes the built-in corpus with its splits disjoint on the source side.

    Pairs are drawn as in `builtin_pairs` until there are train + dev + test distinct source
    sentences; a repeated source is dropped (only the first pair drawn for a source is kept:
    e.g. en "May 21, 1999" is both the `long` and the `medium` English date, while German
    has two targets for it). The first `test_size` distinct sources make the test set, the next
    `dev_size` the dev set and the rest the training set, so for a given seed the test set does
    not change with the training size.

    Args:
        pair: "en-fr", "en-de" or "en-es".
        train_size: Training pairs.
        dev_size: Dev pairs.
        test_size: Test pairs.
        seed: Seeds the draw.
        progress: Called now and then with the number of distinct pairs drawn so far.

    Returns:
        A `Corpus` with exactly the sizes asked for, no source sentence in two splits (or twice
        in one).

    Raises:
        ValueError: If `pair` is unknown or a size is not a positive integer.
    """
    sizes = [
        check_count("test_size", test_size, minimum=1),
        check_count("dev_size", dev_size, minimum=1),
        check_count("train_size", train_size, minimum=1),
    ]
    total = sum(sizes)
    unique: dict[str, str] = {}
    stream = _stream(pair, seed)
    while len(unique) < total:
        source, target = next(stream)
        unique.setdefault(source, target)
        if progress is not None and len(unique) % 1000 == 0:
            progress(len(unique))
    if progress is not None:
        progress(total)
    pairs = list(unique.items())
    test = pairs[: sizes[0]]
    dev = pairs[sizes[0] : sizes[0] + sizes[1]]
    train = pairs[sizes[0] + sizes[1] :]
    return Corpus(train=train, dev=dev, test=test)


# Gold word alignments.

Link = tuple[int, int]
_THOUSAND = {"en": {"thousand"}, "fr": {"mille"}, "es": {"mil"}}
_HUNDRED = {"en": {"hundred"}, "fr": {"cent", "cents"}, "es": {"cien", "ciento"}}
# Spanish hundreds with their digit in one word.
_FUSED_HUNDREDS = {"doscientos", "trescientos", "cuatrocientos", "quinientos", "seiscientos",
                   "setecientos", "ochocientos", "novecientos"}
_NO_LINK = {"en": {"and"}}
_NUMBER_PARTS = ("k.m", "k.h", "k.tu", "K", "u.m", "u.h", "u.tu")
_NAMES: dict[str, tuple[re.Pattern, dict[str, str]]] = {}


def _date_names(language: str) -> tuple[re.Pattern, dict[str, str]]:
    """A pattern of the language's weekday names and month names (wide and abbreviated), and
    the kind of each name (lower-cased)."""
    if language not in _NAMES:
        locale = _locale(language)
        names = {name: "weekday" for name in locale.days["format"]["wide"].values()}
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                names.update({name: "month" for name in locale.months[context][width].values()})
        pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        _NAMES[language] = (re.compile(rf"(?<!\w)({pattern})(?!\w)", re.IGNORECASE),
                            {n.lower(): kind for n, kind in names.items()})
    return _NAMES[language]


def _date_char_labels(text: str, language: str) -> list[set]:
    """The field of every character of a date: weekday, month, day or year; punctuation
    gets "p:<char>:<the field before it>"; other characters none."""
    labels: list[set] = [set() for _ in text]
    pattern, kinds = _date_names(language)
    named_month = False
    for match in pattern.finditer(text):
        kind = kinds[match.group(1).lower()]
        named_month |= kind == "month"
        for k in range(match.start(), match.end()):
            labels[k].add(kind)
    short = 0
    for match in re.finditer(r"\d+", text):
        if len(match.group()) == 4:
            kind = "year"
        else:  # day, or the month of a numeric date (German "24.02.1987")
            kind = "month" if short == 1 and not named_month else "day"
            short += 1
        for k in range(match.start(), match.end()):
            labels[k].add(kind)
    field = "start"
    for k, char in enumerate(text):
        if labels[k]:
            field = min(labels[k])
        elif not char.isalnum() and not char.isspace():
            labels[k].add(f"p:{char}:{field}")
    return labels


def _number_word_labels(words: Sequence[str], language: str) -> list[set]:
    """The parts of a spelled-out number each word renders (see the module docstring):
    "<group>.<part>" with group k (thousands) or u (units) and part m (hundreds digit),
    h (hundred) or tu (tens and units), and "K" for the thousand."""
    if language not in _THOUSAND:  # German: one compound word renders every part
        return [set(_NUMBER_PARTS) for _ in words]
    group = "k" if any(w in _THOUSAND[language] for w in words) else "u"
    labels = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word in _THOUSAND[language]:
            labels.append({"K"})
            group = "u"
        elif word in _NO_LINK.get(language, ()):
            labels.append(set())
        elif word in _FUSED_HUNDREDS:
            labels.append({f"{group}.m", f"{group}.h"})
        elif word in _HUNDRED[language]:
            labels.append({f"{group}.h"})
        elif following in _HUNDRED[language]:
            labels.append({f"{group}.m"})
        else:
            labels.append({f"{group}.tu"})
    return labels


def _number_char_labels(text: str, language: str) -> list[set]:
    labels: list[set] = [set() for _ in text]
    matches = list(re.finditer(r"[^\s,]+", text))
    words = [m.group().lower() for m in matches]
    part = "start"
    for match, word_labels in zip(matches, _number_word_labels(words, language), strict=True):
        for k in range(match.start(), match.end()):
            labels[k] = set(word_labels)
    for k, char in enumerate(text):
        if labels[k]:
            part = min(labels[k])
        elif not char.isspace():
            labels[k].add(f"p:{char}:{part}")
    return labels


def _token_labels(text: str, tokens: Sequence[str], char_labels: list[set]) -> list[set]:
    """The labels of each token: those of its characters (found left to right in `text`)."""
    out, position = [], 0
    for token in tokens:
        start = text.find(token, position)
        if start < 0:
            out.append(set())
            continue
        position = start + len(token)
        out.append(set().union(*char_labels[start:position]))
    return out


def _implicit_parts(labels: list[set], other: list[set]) -> None:
    """A number part said in the other language but left implicit in this one ("one" of
    "one thousand" for "mille") is rendered by the word it goes with: the hundred or the
    thousand of its group."""
    here = set().union(*labels) if labels else set()
    there = set().union(*other) if other else set()
    for part in sorted(there - here):
        group, _, kind = part.partition(".")
        carrier = {"m": f"{group}.h", "tu": "K" if group == "k" else None}.get(kind)
        for word in labels:
            if carrier in word:
                word.add(part)


def gold_alignment(source: str, target: str, pair: str = "en-fr",
                   source_tokens: Sequence[str] | None = None,
                   target_tokens: Sequence[str] | None = None) -> list[Link]:
    """The gold word alignment of a built-in pair (see the module docstring).

    >>> gold_alignment("Sunday, March 21, 1999", "dimanche 21 mars 1999")
    [(0, 0), (2, 2), (3, 1), (5, 3)]

    Args:
        source, target: A pair made by this module (normalized text).
        pair: Its language pair.
        source_tokens, target_tokens: Their word-level tokens, if known already (the pieces
            of a word-level `Tokenizer`); default: `tokenizer.word_tokens`.

    Returns:
        Sorted links (source token i, target token j), 0-based.

    Raises:
        ValueError: If `pair` is unknown.
    """
    src_lang, tgt_lang = _languages(pair)
    if source_tokens is None:
        source_tokens = word_tokens(source, src_lang)
    if target_tokens is None:
        target_tokens = word_tokens(target, tgt_lang)
    # Dates always hold digits (the year); spelled-out numbers never do.
    char_labels = _date_char_labels if any(c.isdigit() for c in source) else _number_char_labels
    src = _token_labels(source, source_tokens, char_labels(source, src_lang))
    tgt = _token_labels(target, target_tokens, char_labels(target, tgt_lang))
    if char_labels is _number_char_labels:
        _implicit_parts(src, tgt)
        _implicit_parts(tgt, src)
    return [(i, j) for i, a in enumerate(src) for j, b in enumerate(tgt) if a & b]


def gold_alignments(pairs: Sequence[Pair], pair: str = "en-fr") -> list[list[Link]]:
    """`gold_alignment` of every (source, target) of `pairs`."""
    return [gold_alignment(source, target, pair) for source, target in pairs]


def corpus_alignments(corpus: Corpus, pair: str = "en-fr", tokenizers=None, train: bool = True,
                      progress: Callable[[int], None] | None = None):
    """The gold word alignments of a built-in `corpus`, split by split.

    Args:
        corpus: Made by `builtin_corpus` for `pair`.
        pair: Its language pair.
        tokenizers: Optional (source, target) `Tokenizer`s: word-level ones give their
            (cached) pieces as the words, which saves tokenizing again.
        train: Also the training split's (else its `train` is None).
        progress: Called now and then with the number of pairs done.

    Returns:
        A `translate.alignment.CorpusAlignments`.
    """
    from translate.alignment import CorpusAlignments

    done = 0

    def links(pairs):
        nonlocal done
        out = []
        for source, target in pairs:
            tokens = [tok.pieces(text) if tok is not None and tok.kind == "word" else None
                      for tok, text in zip(tokenizers or (None, None), (source, target),
                                           strict=True)]
            out.append(gold_alignment(source, target, pair, *tokens))
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(done)
        return out

    return CorpusAlignments(train=links(corpus.train) if train else None,
                            dev=links(corpus.dev), test=links(corpus.test))
