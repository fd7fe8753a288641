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
"""

import datetime
from collections.abc import Callable, Iterator

import babel
import babel.dates
import numpy as np
from num2words import num2words

from translate.corpus import Corpus, Pair, check_count, normalize_text

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
