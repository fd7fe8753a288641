"""`Tokenizer`: text <-> token ids, word level (Moses) or subword (SentencePiece).

Special ids are shared by both kinds: PAD=0, BOS=1, EOS=2, UNK=3.

Word level: the text is NFC-normalized and split with `sacremoses.MosesTokenizer(lang)`
(punctuation split off, `escape=False`, `aggressive_dash_splits=False`, case kept since BLEU is
cased) and put back together with `MosesDetokenizer(lang)`, so `decode(encode(s))` gives back
ordinary text ("Hello, world!"), not "Hello , world !". The few things Moses does not put back
are mostly clock times ("3:20" would come back "3: 20") and guillemets outside French
(«Hola» would come back « Hola »); `decode` mends those. What is left is rare, mostly
words with a curly apostrophe ("It’s"). The vocabulary holds the training side's tokens, most
frequent first, ties in alphabetical order.

SentencePiece: a unigram or BPE model trained on the training side from memory, with the same
special ids; its `.model` file is saved with the model.

Moses is slow (pure Python regular expressions), so the tokens of each distinct sentence are
cached: `fit` hands its cache on, so that encoding the training text right after `fit` does
not tokenize it again.
"""

import collections
import io
import json
import os
import pathlib
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import sentencepiece as spm
from sacremoses import MosesDetokenizer, MosesTokenizer

from attn_core.checkpoint import atomic_write
from translate.corpus import normalize_text
from translate.data_error import DataError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
KINDS = ("word", "sentencepiece")
MODEL_TYPES = ("unigram", "bpe")
DEFAULT_SENTENCEPIECE_VOCAB = 8000
FORMAT_VERSION = 1

_CACHE_LIMIT = 1_000_000
_DIGITS = re.compile(r"\d+")
_MOSES: dict[str, MosesTokenizer] = {}


def _moses_tokenize(moses: MosesTokenizer, text: str) -> list[str]:
    """The word-level tokens: Moses' punctuation split, text kept as written."""
    return moses.tokenize(text, escape=False, aggressive_dash_splits=False)


def word_tokens(text: str, lang: str) -> list[str]:
    """The tokens a word-level `Tokenizer` of `lang` makes of `text` (NFC-normalized first).

    The units of word alignments (`translate.alignment`), whatever the model's tokenizer.
    """
    if lang not in _MOSES:
        _MOSES[lang] = MosesTokenizer(lang=lang)
    return _moses_tokenize(_MOSES[lang], normalize_text(text))


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` to be one of {KINDS}. Received: kind={kind!r}")
    return kind


def _rejoin_times(tokens: list[str]) -> list[str]:
    """Joins ["3", ":", "20"] into ["3:20"], which Moses splits but does not put back."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if (
            i + 2 < len(tokens)
            and tokens[i + 1] == ":"
            and _DIGITS.fullmatch(tokens[i])
            and _DIGITS.fullmatch(tokens[i + 2])
        ):
            out.append(tokens[i] + ":" + tokens[i + 2])
            i += 3
        else:
            out.append(tokens[i])
            i += 1
    return out


_GUILLEMETS = re.compile(r"«\s([^«»]*?)\s»")
_GUILLEMETS_DE = re.compile(r"»\s([^«»]*?)\s«")


def _close_guillemets(text: str, lang: str) -> str:
    """Moses leaves « » spaced out as in French; other languages write «Hola» (German »Hallo«)."""
    if lang == "fr":
        return text
    if lang == "de":
        return _GUILLEMETS_DE.sub(r"»\1«", text)
    return _GUILLEMETS.sub(r"«\1»", text)


class Tokenizer:
    """Maps text to token ids and back; build one with `Tokenizer.fit` or `Tokenizer.load`.

    Example:

    >>> tok = Tokenizer.fit(["Hello, world!", "Hello again."], lang="en")
    >>> tok.pieces("Hello, world!")
    ['Hello', ',', 'world', '!']
    >>> tok.decode(tok.encode("Hello, world!") + [EOS, 5, 6])
    'Hello, world!'

    Args:
        kind: "word" or "sentencepiece".
        lang: Language code for Moses ("en", "fr", "de", "es", ...).
        vocab: For "word": the tokens by id, starting with `SPECIAL_TOKENS`.
        model_proto: For "sentencepiece": the serialized model (a `.model` file's bytes).

    Raises:
        ValueError: If `kind` is unknown or its vocab/model is missing or lacks the special ids.
    """

    def __init__(
        self,
        kind: str,
        lang: str,
        *,
        vocab: Sequence[str] | None = None,
        model_proto: bytes | None = None,
    ):
        self.kind = _check_kind(kind)
        self.lang = str(lang)
        self._cache: dict[str, list[str]] = {}
        if kind == "word":
            self._moses = MosesTokenizer(lang=self.lang)
            self._detok = MosesDetokenizer(lang=self.lang)
            if vocab is None or tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
                raise ValueError(
                    f"Expected `vocab` to be a list of tokens starting with {SPECIAL_TOKENS}. "
                    f"Received: vocab={None if vocab is None else list(vocab[:6])!r}..."
                )
            self._tokens = list(vocab)
            self._ids = {token: i for i, token in enumerate(self._tokens)}
            if len(self._ids) != len(self._tokens):
                repeated = [t for t, n in collections.Counter(self._tokens).items() if n > 1]
                raise ValueError(
                    "Expected the tokens of `vocab` to be distinct. "
                    f"Received: repeated={repeated[:5]}"
                )
            self._sp = None
            self.model_proto = None
        else:
            if not model_proto:
                raise ValueError(
                    "Expected `model_proto` (a SentencePiece model) for kind='sentencepiece'. "
                    "Received: model_proto=None"
                )
            self._sp = spm.SentencePieceProcessor(model_proto=bytes(model_proto))
            found = tuple(self._sp.id_to_piece(i) for i in range(len(SPECIAL_TOKENS)))
            ids = (self._sp.pad_id(), self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id())
            if ids != (PAD, BOS, EOS, UNK):
                raise ValueError(
                    "Expected a SentencePiece model with pad=0, bos=1, eos=2, unk=3. "
                    f"Received: ids={ids}, pieces={found}"
                )
            self.model_proto = bytes(model_proto)
            self._tokens = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
            self._ids = {}

    # Building.

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        lang: str,
        kind: str = "word",
        vocab_size: int | None = None,
        min_count: int = 1,
        model_type: str = "unigram",
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> "Tokenizer":
        """Builds a tokenizer from training text (only ever the training side).

        Args:
            texts: The sentences of one language.
            lang: Their language code (for Moses).
            kind: "word" or "sentencepiece".
            vocab_size: The most ids, specials included. Word level: the most frequent tokens
                are kept (ties in alphabetical order), None keeps all. SentencePiece: the size
                to train for (None: 8000); a small corpus may give fewer
                (`hard_vocab_limit=False`).
            min_count: Word level: drop tokens seen fewer times.
            model_type: SentencePiece: "unigram" or "bpe".
            seed: SentencePiece: seeds its random generator.
            progress: Called now and then with the number of sentences tokenized so far
                (word level; SentencePiece trains in one call and reports when done).

        Returns:
            A `Tokenizer`.

        Raises:
            ValueError: For a bad argument, no text, or a SentencePiece training failure.
        """
        _check_kind(kind)
        if vocab_size is not None and (
            isinstance(vocab_size, bool)
            or not isinstance(vocab_size, int | np.integer)
            or vocab_size <= len(SPECIAL_TOKENS)
        ):
            raise ValueError(
                f"Expected `vocab_size` to be an integer > {len(SPECIAL_TOKENS)} or None. "
                f"Received: vocab_size={vocab_size!r}"
            )
        counts = collections.Counter(normalize_text(t) for t in texts)
        counts.pop("", None)
        if not counts:
            raise ValueError("Expected at least one non-empty text. Received: texts=[]")
        if kind == "word":
            if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
                raise ValueError(
                    "Expected `min_count` to be a positive integer. "
                    f"Received: min_count={min_count!r}"
                )
            tokenizer = cls("word", lang, vocab=SPECIAL_TOKENS)
            token_counts: collections.Counter[str] = collections.Counter()
            done = 0
            for text, count in counts.items():
                for token in tokenizer._words(text):
                    token_counts[token] += count
                done += count
                if progress is not None and done % 1000 < count:
                    progress(done)
            if progress is not None:
                progress(done)
            for special in SPECIAL_TOKENS:
                token_counts.pop(special, None)
            ranked = sorted(
                (item for item in token_counts.items() if item[1] >= min_count),
                key=lambda item: (-item[1], item[0]),
            )
            if vocab_size is not None:
                ranked = ranked[: vocab_size - len(SPECIAL_TOKENS)]
            vocab = list(SPECIAL_TOKENS) + [token for token, _ in ranked]
            fitted = cls("word", lang, vocab=vocab)
            fitted._cache = tokenizer._cache  # The training text is usually encoded next.
            return fitted
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"Expected `model_type` to be one of {MODEL_TYPES}. "
                f"Received: model_type={model_type!r}"
            )
        model = io.BytesIO()
        spm.set_random_generator_seed(int(seed))
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=counts.elements(),
                model_writer=model,
                vocab_size=int(vocab_size or DEFAULT_SENTENCEPIECE_VOCAB),
                model_type=model_type,
                pad_id=PAD,
                bos_id=BOS,
                eos_id=EOS,
                unk_id=UNK,
                pad_piece=SPECIAL_TOKENS[PAD],
                bos_piece=SPECIAL_TOKENS[BOS],
                eos_piece=SPECIAL_TOKENS[EOS],
                unk_piece=SPECIAL_TOKENS[UNK],
                hard_vocab_limit=False,
                character_coverage=1.0,
                normalization_rule_name="identity",
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError as e:
            raise ValueError(f"SentencePiece training failed: {e}") from e
        if progress is not None:
            progress(counts.total())
        return cls("sentencepiece", lang, model_proto=model.getvalue())

    # Text <-> ids.

    def same_as(self, other: "Tokenizer") -> bool:
        """Whether `other` maps text to the same ids (same kind, language and vocabulary)."""
        return (self.kind, self.lang, self._tokens, self.model_proto) == (
            other.kind, other.lang, other._tokens, other.model_proto)

    @property
    def vocab_size(self) -> int:
        """The number of ids, specials included."""
        return len(self._tokens)

    def _words(self, text: str) -> list[str]:
        """Moses tokens of normalized `text`, cached."""
        tokens = self._cache.get(text)
        if tokens is None:
            tokens = _moses_tokenize(self._moses, text)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = tokens
        return tokens

    def encode(self, text: str) -> list[int]:
        """Returns the ids of `text`, without BOS or EOS; unknown words get UNK."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        """Encodes many texts at once (each distinct text is tokenized once).

        Args:
            texts: Sentences.

        Returns:
            One list of ids a text, without BOS or EOS.
        """
        texts = [normalize_text(t) for t in texts]
        if self._sp is not None:
            return self._sp.encode(texts)
        ids = self._ids
        encoded: dict[str, list[int]] = {}
        out = []
        for text in texts:
            row = encoded.get(text)
            if row is None:
                row = [ids.get(token, UNK) for token in self._words(text)]
                encoded[text] = row
            out.append(list(row))
        return out

    def pieces(self, text: str) -> list[str]:
        """Returns the tokens of `text` as strings, one per id of `encode(text)` (for the axes
        of attention plots; unknown words are shown as written)."""
        text = normalize_text(text)
        if self._sp is not None:
            return self._sp.encode(text, out_type=str)
        return list(self._words(text))

    def id_to_piece(self, id_: int) -> str:
        """Returns the token string of one id (a special one as e.g. "</s>"; an id out of range
        as "<unk>")."""
        id_ = int(id_)
        return self._tokens[id_] if 0 <= id_ < len(self._tokens) else SPECIAL_TOKENS[UNK]

    def ids_to_pieces(self, ids: Iterable[int]) -> list[str]:
        """Returns `id_to_piece` of each id (for the output axis of attention plots)."""
        return [self.id_to_piece(i) for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Returns the text of `ids`: stops at the first EOS and skips PAD and BOS.

        Args:
            ids: Token ids (a list, NumPy array or tensor of ints).

        Returns:
            Detokenized text; an unknown word shows as "<unk>" (word level) or " ⁇ "
            (SentencePiece).
        """
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        kept = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == EOS:
                break
            if i not in (PAD, BOS):
                kept.append(i if 0 <= i < len(self._tokens) else UNK)
        if self._sp is not None:
            return self._sp.decode(kept)
        return self.detokenize([self._tokens[i] for i in kept])

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Word level: the text of token strings, put together as `decode` does (for tokens
        that are not all in the vocabulary, such as unknown words replaced by source words).

        Args:
            tokens: Token strings, without special tokens.

        Returns:
            Detokenized text.

        Raises:
            ValueError: For a SentencePiece tokenizer (its pieces are joined by `decode`).
        """
        if self._sp is not None:
            raise ValueError("Expected a word-level tokenizer. Received: kind='sentencepiece'")
        tokens = _rejoin_times(list(tokens))
        return _close_guillemets(self._detok.detokenize(tokens, unescape=False), self.lang)

    # Files.

    def _paths(self, directory: str | os.PathLike, name: str) -> tuple[pathlib.Path, pathlib.Path]:
        directory = pathlib.Path(directory)
        return directory / f"{name}.tokenizer.json", directory / f"{name}.model"

    def save(self, directory: str | os.PathLike, name: str) -> pathlib.Path:
        """Saves to `<directory>/<name>.tokenizer.json` (kind, lang and, word level, the
        vocabulary) and, for SentencePiece, `<directory>/<name>.model`.

        Args:
            directory: An existing directory (the model's).
            name: The file stem, e.g. "source" or "target".

        Returns:
            The path of the JSON file.
        """
        json_path, model_path = self._paths(directory, name)
        meta = {"format": FORMAT_VERSION, "kind": self.kind, "lang": self.lang}
        if self._sp is not None:
            atomic_write(model_path, lambda f: f.write(self.model_proto))
            meta["model"] = model_path.name
        else:
            meta["tokens"] = self._tokens
        text = json.dumps(meta, ensure_ascii=False, indent=0) + "\n"
        atomic_write(json_path, lambda f: f.write(text.encode("utf-8")))
        return json_path

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str) -> "Tokenizer":
        """Loads what `save(directory, name)` wrote.

        Returns:
            A `Tokenizer`.

        Raises:
            DataError: If a file is missing, unreadable or not a tokenizer of this format.
        """
        json_path = pathlib.Path(directory) / f"{name}.tokenizer.json"
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DataError(f"cannot read: {e.strerror or e}", path=json_path) from None
        except ValueError as e:
            raise DataError(f"not a tokenizer file: {e}", path=json_path) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise DataError(f"not a tokenizer file of format {FORMAT_VERSION}", path=json_path)
        try:
            if meta.get("kind") == "sentencepiece":
                model_path = json_path.parent / str(meta["model"])
                try:
                    proto = model_path.read_bytes()
                except OSError as e:
                    raise DataError(f"cannot read: {e.strerror or e}", path=model_path) from None
                return cls("sentencepiece", meta["lang"], model_proto=proto)
            return cls(meta.get("kind"), meta["lang"], vocab=meta["tokens"])
        except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"not a valid tokenizer: {e}", path=json_path) from None

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, lang={self.lang!r}, vocab_size={self.vocab_size})"
