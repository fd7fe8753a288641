"""Parallel corpora: the `Corpus` splits, the TSV and two-file readers, and the seeded hold-out.

Every string is Unicode NFC-normalized with its whitespace collapsed (`normalize_text`).
Mistakes in the files raise `DataError` with a `path:line: ` prefix.

Formats:

- TSV, as in the Anki/Tatoeba downloads (`spa-eng/spa.txt`): `source<TAB>target` and
  optionally more tab-separated columns (the attribution), which are ignored.
- Two files, one sentence a line, the same number of lines (`train.en`, `train.fr`).

Blank lines at the end of a file are ignored; a blank line anywhere else is an "empty source"
(or "empty target") error, since it usually means the files have slipped out of alignment.
"""

import collections
import dataclasses
import os
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from translate.data_error import DataError

Pair = tuple[str, str]
PathLike = str | os.PathLike


def normalize_text(text: str) -> str:
    """Returns `text` NFC-normalized, with runs of whitespace (NBSP included) made one space and
    the ends stripped."""
    return unicodedata.normalize("NFC", " ".join(text.split()))


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A parallel corpus split three ways.

    Attributes:
        train: (source, target) pairs to learn from.
        dev: pairs for validation (early stopping, checkpoint choice).
        test: pairs for the final score.
    """

    train: list[Pair]
    dev: list[Pair]
    test: list[Pair]

    def summary(self) -> str:
        """Returns one line with the sizes of the splits, their distinct sources, and how many
        dev/test sources also appear in train (0 for the splits made here)."""
        train_sources = {s for s, _ in self.train}
        parts = []
        for name in ("train", "dev", "test"):
            pairs = getattr(self, name)
            sources = {s for s, _ in pairs}
            text = f"{name} {len(pairs):,} pairs ({len(sources):,} distinct sources"
            if name != "train":
                text += f", {len(sources & train_sources):,} also in train"
            parts.append(text + ")")
        return "; ".join(parts)


def _read_lines(path: PathLike) -> list[str]:
    """Reads a UTF-8 text file line by line in binary mode.

    Returns:
        The lines without their line ends (and without a leading byte-order mark), with the
        blank lines at the end of the file dropped.

    Raises:
        DataError: If the file cannot be read, or a line is not valid UTF-8 (naming the line).
    """
    lines = []
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad = raw[e.start : e.start + 1]
                    raise DataError(
                        f"not valid UTF-8: byte {bad!r} at column {e.start + 1}",
                        path=path,
                        line=number,
                    ) from None
                if number == 1:
                    text = text.removeprefix("\ufeff")
                lines.append(text.rstrip("\n").rstrip("\r"))
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", path=path) from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_tsv(path: PathLike, reverse: bool = False) -> list[Pair]:
    """Reads a tab-separated corpus: `source<TAB>target[<TAB>anything...]` a line.

    Args:
        path: The file, UTF-8.
        reverse: Swap the columns: the second one becomes the source.

    Returns:
        The (source, target) pairs in file order, normalized with `normalize_text`.

    Raises:
        DataError: If the file cannot be read or holds no pairs, or a line is not UTF-8, has
            fewer than 2 columns, or an empty source or target (the message names the line).
    """
    pairs = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            raise DataError("empty source (blank line)", path=path, line=number)
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataError(
                f"expected at least 2 tab-separated columns, got {len(columns)}",
                path=path,
                line=number,
            )
        first, second = normalize_text(columns[0]), normalize_text(columns[1])
        source, target = (second, first) if reverse else (first, second)
        if not source:
            raise DataError("empty source", path=path, line=number)
        if not target:
            raise DataError("empty target", path=path, line=number)
        pairs.append((source, target))
    if not pairs:
        raise DataError("no sentence pairs", path=path)
    return pairs


def read_parallel(source_path: PathLike, target_path: PathLike) -> list[Pair]:
    """Reads a corpus held in two files, one sentence a line, line i of each forming a pair.

    Args:
        source_path: The source-language file, UTF-8.
        target_path: The target-language file, UTF-8, with as many lines.

    Returns:
        The (source, target) pairs in file order, normalized with `normalize_text`.

    Raises:
        DataError: If a file cannot be read or holds no lines, a line is not UTF-8 or empty
            (naming the file and line), or the files have different numbers of lines (naming
            both files and their counts).
    """
    sources = [normalize_text(s) for s in _read_lines(source_path)]
    targets = [normalize_text(t) for t in _read_lines(target_path)]
    for number, (source, target) in enumerate(zip(sources, targets, strict=False), start=1):
        if not source:
            raise DataError("empty source", path=source_path, line=number)
        if not target:
            raise DataError("empty target", path=target_path, line=number)
    if len(sources) != len(targets):
        longer = source_path if len(sources) > len(targets) else target_path
        raise DataError(
            f"line counts differ: {os.fspath(source_path)} has {len(sources)} lines, "
            f"{os.fspath(target_path)} has {len(targets)}",
            path=longer,
            line=min(len(sources), len(targets)) + 1,
        )
    if not sources:
        raise DataError("no sentence pairs", path=source_path)
    return list(zip(sources, targets, strict=True))


def check_count(name: str, value, minimum: int = 0) -> int:
    """Returns `value` as an int, or raises ValueError unless it is an integer >= `minimum`
    (0 or 1); shared by the corpus, built-in corpus and input pipeline arguments."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(
            f"Expected `{name}` to be a {kind} integer. Received: {name}={value!r}"
        )
    return int(value)


def split_corpus(
    pairs: Sequence[Pair],
    dev_size: int,
    test_size: int,
    seed: int = 0,
    name: PathLike | None = None,
) -> Corpus:
    """Holds out seeded dev and test sets, disjoint from train and each other on the source side.

    Pairs are grouped by source sentence, the groups shuffled with `seed`, and each group in turn
    goes whole to test if it fits in what test still lacks, else to dev if it fits there, else
    to train. So the held-out sizes are exact unless only large groups are left, and no source
    sentence is in two splits. Each split keeps the order of `pairs`.

    Args:
        pairs: (source, target) pairs.
        dev_size: Pairs to hold out for dev; 0 for none.
        test_size: Pairs to hold out for test; 0 for none.
        seed: Seeds the choice.
        name: The file the pairs came from, for messages; optional.

    Returns:
        A `Corpus`.

    Raises:
        ValueError: If a size is not a non-negative integer.
        DataError: If a split would come out empty (naming the sizes).
    """
    dev_size = check_count("dev_size", dev_size)
    test_size = check_count("test_size", test_size)
    pairs = list(pairs)
    where = f"cannot hold out dev_size={dev_size} and test_size={test_size} pairs from {len(pairs)}"
    if dev_size + test_size >= len(pairs):
        raise DataError(f"{where}: the train split would be empty", path=name)
    groups: dict[str, int] = collections.Counter(source for source, _ in pairs)
    sources = list(groups)
    order = np.random.default_rng(seed).permutation(len(sources))
    split_of: dict[str, str] = {}
    left = {"test": test_size, "dev": dev_size}
    for i in order:
        if not left["test"] and not left["dev"]:
            break
        source = sources[i]
        count = groups[source]
        for split in ("test", "dev"):
            if count <= left[split]:
                split_of[source] = split
                left[split] -= count
                break
    out: dict[str, list[Pair]] = {"train": [], "dev": [], "test": []}
    for pair in pairs:
        out[split_of.get(pair[0], "train")].append(pair)
    distinct = f"{len(sources)} distinct sources"
    for split, size in (("train", 1), ("dev", dev_size), ("test", test_size)):
        if size and not out[split]:
            raise DataError(f"{where} ({distinct}): the {split} split would be empty", path=name)
    return Corpus(train=out["train"], dev=out["dev"], test=out["test"])


def split_files(split: str, tsv: PathLike | None, src: PathLike | None, tgt: PathLike | None,
                train_given: bool) -> PathLike | tuple[PathLike, PathLike] | None:
    """Which files hold a split, from its data flags: `--<split>_file` (`tsv`), or
    `--<split>_src` and `--<split>_tgt`.

    Args:
        split: "train", "dev" or "test", for the messages.
        tsv, src, tgt: The flags' values (None or "" when not given).
        train_given: Whether training files were given (dev and test files need them).

    Returns:
        The TSV file, a (source, target) pair, or None.

    Raises:
        DataError: naming the flags, when they exclude each other or come without the
            others they need.
    """
    if tsv and (src or tgt):
        raise DataError(f"--{split}_file and --{split}_src/--{split}_tgt exclude each other")
    if bool(src) != bool(tgt):
        raise DataError(f"--{split}_src and --{split}_tgt must be given together")
    if split != "train" and (tsv or src) and not train_given:
        raise DataError("--dev_*/--test_* files need training files (--train_file or "
                        "--train_src/--train_tgt)")
    return tsv or ((src, tgt) if src else None)


def _read_any(files: PathLike | Sequence[PathLike], reverse: bool) -> list[Pair]:
    if isinstance(files, str | os.PathLike):
        return read_tsv(files, reverse=reverse)
    if isinstance(files, Sequence) and len(files) == 2:
        pairs = read_parallel(files[0], files[1])
        return [(t, s) for s, t in pairs] if reverse else pairs
    raise ValueError(
        "Expected a TSV path or a (source path, target path) pair. "
        f"Received: files={files!r}"
    )


def load_corpus(
    train: PathLike | Sequence[PathLike],
    dev: PathLike | Sequence[PathLike] | None = None,
    test: PathLike | Sequence[PathLike] | None = None,
    *,
    reverse: bool = False,
    dev_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
) -> Corpus:
    """Reads a corpus from files; dev and test sets not given as files are held out of train.

    Each of `train`, `dev` and `test` is a TSV path (`read_tsv`) or a (source path, target path)
    pair of files (`read_parallel`). A missing dev or test file is replaced by a seeded hold-out
    of `dev_size` or `test_size` pairs from train (`split_corpus`), disjoint on the source side.
    Given files are used as they are: `Corpus.summary()` reports their overlap with train.

    Args:
        train: The training file(s).
        dev: The dev file(s), or None to hold out `dev_size` pairs.
        test: The test file(s), or None to hold out `test_size` pairs.
        reverse: Swap source and target in every file.
        dev_size: Pairs to hold out when `dev` is None.
        test_size: Pairs to hold out when `test` is None.
        seed: Seeds the hold-out.

    Returns:
        A `Corpus`.

    Raises:
        DataError: For unreadable or malformed files, or a hold-out that leaves a split empty.
        ValueError: For arguments of the wrong kind.
    """
    train_pairs = _read_any(train, reverse)
    dev_pairs = None if dev is None else _read_any(dev, reverse)
    test_pairs = None if test is None else _read_any(test, reverse)
    if dev_pairs is not None and test_pairs is not None:
        return Corpus(train=train_pairs, dev=dev_pairs, test=test_pairs)
    name = train if isinstance(train, str | os.PathLike) else train[0]
    held = split_corpus(
        train_pairs,
        dev_size=dev_size if dev_pairs is None else 0,
        test_size=test_size if test_pairs is None else 0,
        seed=seed,
        name=name,
    )
    return Corpus(
        train=held.train,
        dev=held.dev if dev_pairs is None else dev_pairs,
        test=held.test if test_pairs is None else test_pairs,
    )


def sources(pairs: Iterable[Pair]) -> list[str]:
    """Returns the source sides of `pairs`."""
    return [s for s, _ in pairs]


def targets(pairs: Iterable[Pair]) -> list[str]:
    """Returns the target sides of `pairs`."""
    return [t for _, t in pairs]
