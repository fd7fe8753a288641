r"""Train the attention NMT model, then evaluate it on the test split.

    python -m translate.train --model_dir=runs/nmt                  # built-in en->fr corpus
    python -m translate.train --model_dir=runs/spa \
        --train_file=../shared/data/spa-eng/spa.txt --reverse       # spa->eng, seeded dev/test
    python -m translate.train --model_dir=D --train_src=a.de --train_tgt=a.en \
        --dev_src=... --dev_tgt=... --test_src=... --test_tgt=...

The defaults suit the data: a training file of under 40,000 pairs gets 4,000 SentencePiece
pieces a side, no dropout and tied embeddings unless the flags say otherwise.
Running the same command again resumes from the newest intact checkpoint. The saved configs
win: a model flag given explicitly that differs from the saved one is a one-line error that
leaves the directory untouched; the schedule (steps, budget, evaluation cadence, learning
rate, final decoding) may change, and each change is logged. The tokenizers saved in the
directory are reused only for the corpus they were fitted on. At the end it writes
`metrics.json` (BLEU and chrF on test, with beam 5 and greedy; speed, precision) beside
TensorBoard events with attention heatmaps and sample translations. Ctrl-C saves a
checkpoint and exits with 130.

Several workers (`MultiWorkerMirroredStrategy`, the cluster in `TF_CONFIG`) run the same
command with the same --model_dir, on a filesystem they all share; --tokens_per_batch is the
global batch:

    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' \
    python -m translate.train --strategy=multi_worker --model_dir=/shared/nmt   # index 1 on host2

Each worker fits the tokenizers itself (they are deterministic) unless the model directory
holds them already; only the chief (index 0) writes into the directory, and every worker
resumes from its checkpoints.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import dataclasses  # noqa: E402
import pathlib  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from attn_core import progress, strategy  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from translate import builtin_corpus, corpus, model_dir  # noqa: E402
from translate.attention_factory import ATTENTIONS  # noqa: E402
from translate.data_error import DataError  # noqa: E402
from translate.model_config import (  # noqa: E402
    ARCHITECTURE_FIELDS,
    ARCHITECTURES,
    CELLS,
    VOCAB_FIELDS,
    ModelConfig,
)
from translate.tokenizer import DEFAULT_SENTENCEPIECE_VOCAB, Tokenizer  # noqa: E402
from translate.train_config import SCHEDULE_FIELDS, TrainConfig  # noqa: E402

FLAGS = flags.FLAGS
SPLITS = ("train", "dev", "test")
# Settings of the tokenizers: a resumed run keeps the saved ones, like the model config.
TOKENIZER_FLAGS = ("subword", "vocab_size", "src_lang", "tgt_lang")
# A training file of fewer pairs is a small corpus. Most of its words are too rare to learn as
# words: 4,000 SentencePiece pieces a side cover them with a narrow output layer, so steps are
# cheaper and every piece is seen often. A 25-minute budget ends before such a corpus is
# overfitted, so dropout only slows learning there, and a Transformer whose output layer is its
# target embedding has fewer weights to learn. Batches keep the general size: smaller ones
# give more updates, but noisier ones, and learned less in the same time. spa-eng (116k pairs)
# learns best with the general defaults (docs/translate/results.md).
SMALL_CORPUS_PAIRS = 40_000
SMALL_CORPUS_DEFAULTS = {"subword": "sentencepiece", "vocab_size": 4000, "dropout": 0.0,
                         "tie_embeddings": True}


def define_flags():
    """Defines the flags of translate.train (a no-op for those that exist already)."""
    common_flags.define_common_flags()
    common_flags.define_once("string", "model_dir", None,
        "Model directory; running again resumes it (default: a fresh "
        "runs/translate__<data>__<seed>__<UTC time>).")
    # Data.
    common_flags.define_once("enum", "builtin_pair", "en-fr",
        "Language pair of the built-in corpus (used when no data file is given).",
        enum_values=builtin_corpus.PAIRS)
    common_flags.define_once("integer", "train_size", 50000,
        "Built-in corpus: training pairs.",
        lower_bound=1)
    common_flags.define_once("integer", "dev_size", 1000,
        "Dev pairs (built-in, or held out of the training file).",
        lower_bound=1)
    common_flags.define_once("integer", "test_size", 1000,
        "Test pairs (built-in, or held out of the training file).",
        lower_bound=1)
    common_flags.define_once("integer", "data_seed", 0,
        "Seed of the built-in corpus and of the dev/test hold-out of a training file; apart "
        "from --seed, so that runs of several seeds (an ensemble) share data and tokenizers.",
        lower_bound=0)
    common_flags.define_once("bool", "reverse", False,
        "Swap source and target of every data file.")
    for split in SPLITS:
        common_flags.define_once("string", f"{split}_file", None,
            f"TSV {split} set: source<TAB>target[<TAB>attribution] a line.")
        common_flags.define_once("string", f"{split}_src", None,
            f"Two-file corpus: the {split} source sentences, one a line.")
        common_flags.define_once("string", f"{split}_tgt", None,
            f"Two-file corpus: the {split} target sentences, one a line.")
    common_flags.define_once("enum", "subword", None,
        "Tokenization (default: word; sentencepiece for built-in en-de and for a training "
        f"file of under {SMALL_CORPUS_PAIRS:,} pairs).",
        enum_values=["word", "sentencepiece"])
    common_flags.define_once("integer", "vocab_size", None,
        "Vocabulary size cap (sentencepiece: its size; default: none for word, "
        f"{DEFAULT_SENTENCEPIECE_VOCAB} for sentencepiece, "
        f"{SMALL_CORPUS_DEFAULTS['vocab_size']} for a training file of under "
        f"{SMALL_CORPUS_PAIRS:,} pairs).",
        lower_bound=8)
    common_flags.define_once("string", "src_lang", None,
        "Source language code for Moses (default: from --builtin_pair, or en).")
    common_flags.define_once("string", "tgt_lang", None,
        "Target language code for Moses (default: from --builtin_pair, or en).")
    # Model and training: one flag per config field, the help from the config's docstring.
    common_flags.define_config_flags(
        ModelConfig, skip=VOCAB_FIELDS,
        enums={"architecture": ARCHITECTURES, "cell": CELLS, "attention": ATTENTIONS},
        bounds={"num_layers": (0, None), "units": (1, None), "embedding_dim": (1, None),
                "dropout": (0.0, 0.99), "heads": (1, None), "ff_dim": (1, None)})
    common_flags.define_config_flags(
        TrainConfig,
        bounds={name: (1, None) for name in ("tokens_per_batch", "max_length", "max_steps",
                                             "eval_every", "beam_width", "keep_checkpoints")}
        | {"warmup_steps": (0, None), "decay_steps": (0, None),
           "guided_alignment_weight": (0.0, None)})


# Data.


def _files(split):
    return corpus.split_files(split, getattr(FLAGS, f"{split}_file"),
                              getattr(FLAGS, f"{split}_src"), getattr(FLAGS, f"{split}_tgt"),
                              train_given=bool(FLAGS.train_file or FLAGS.train_src))


def data_name():
    """What the data is called in a fresh run directory's name: the built-in pair, or the
    training file's name."""
    train = _files("train")
    if train is None:
        return FLAGS.builtin_pair
    if isinstance(train, str):
        name = pathlib.Path(train).stem
    else:
        src, tgt = pathlib.Path(train[0]), pathlib.Path(train[1])
        name = (f"{src.stem}{src.suffix}-{tgt.suffix.lstrip('.')}" if src.stem == tgt.stem
                else f"{src.name}-{tgt.name}")
    return f"{name}-reversed" if FLAGS.reverse else name


def data_defaults(train_pairs, explicit):
    """The defaults that suit the data: the tokenizer settings {"subword", "src_lang",
    "tgt_lang"}, and those of `SMALL_CORPUS_DEFAULTS` that apply, for a small training file.

    Args:
        train_pairs: The number of training pairs.
        explicit: The names of the flags given on the command line.
    """
    if _files("train") is None:
        src, tgt = FLAGS.builtin_pair.split("-")
        return {"subword": builtin_corpus.recommended_subword(FLAGS.builtin_pair),
                "src_lang": src, "tgt_lang": tgt}
    defaults = {"subword": "word", "src_lang": "en", "tgt_lang": "en"}
    if train_pairs >= SMALL_CORPUS_PAIRS:
        return defaults
    small = dict(SMALL_CORPUS_DEFAULTS)
    if "subword" in explicit and FLAGS.subword != "sentencepiece":
        del small["vocab_size"]  # a word vocabulary keeps every word unless capped by hand
    if "architecture" in explicit and FLAGS.architecture != "transformer":
        del small["tie_embeddings"]  # the transformer's only
    return defaults | small


def load_data(seed, chief=True):
    """The corpus of the data flags (its progress shown on the chief).

    Raises:
        DataError: for a missing, unreadable or malformed file, or splits that would be empty.
    """
    train, dev, test = (_files(split) for split in SPLITS)
    if train is None:
        total = FLAGS.train_size + FLAGS.dev_size + FLAGS.test_size
        with progress.phase("corpus", total, unit="pair", enabled=chief,
                            delay=progress.SHORT_PHASE_SECONDS) as phase:
            return builtin_corpus.builtin_corpus(FLAGS.builtin_pair, FLAGS.train_size,
                                                 FLAGS.dev_size, FLAGS.test_size, seed,
                                                 progress=phase.update)
    return corpus.load_corpus(train, dev, test, reverse=FLAGS.reverse, dev_size=FLAGS.dev_size,
                              test_size=FLAGS.test_size, seed=seed)


def gold_alignments(data, tokenizers, train_config, chief):
    """The gold word alignments of the built-in corpus (progress on the chief); None for
    data files. The training split's only when guided alignment is on."""
    if _files("train") is not None:
        return None
    train = train_config.guided_alignment_weight > 0
    total = len(data.dev) + len(data.test) + (len(data.train) if train else 0)
    with progress.phase("gold alignments", total, unit="pair", enabled=chief,
                        delay=progress.SHORT_PHASE_SECONDS) as phase:
        return builtin_corpus.corpus_alignments(data, FLAGS.builtin_pair, tokenizers,
                                                train=train, progress=phase.update)


def fit_tokenizers(data, settings, chief):
    """Source and target tokenizers fitted on the training side (progress on the chief)."""
    pairs = data.train
    with progress.phase("tokenizers", 2 * len(pairs), unit="sentence", enabled=chief,
                        delay=progress.SHORT_PHASE_SECONDS) as phase:
        src = Tokenizer.fit([s for s, _ in pairs], settings["src_lang"],
                            kind=settings["subword"], vocab_size=settings["vocab_size"],
                            progress=phase.update)
        tgt = Tokenizer.fit([t for _, t in pairs], settings["tgt_lang"],
                            kind=settings["subword"], vocab_size=settings["vocab_size"],
                            progress=lambda done: phase.update(len(pairs) + done))
    return src, tgt


def tokenizers_for(path, data, settings, saved_record, chief):
    """The tokenizers of the run: those saved in `path` when they were fitted on this
    corpus, else freshly fitted ones (deterministic: every worker fits the same). Writes
    nothing.

    Returns:
        (source tokenizer, target tokenizer, the corpus record to save).

    Raises:
        UserError: when `path` holds tokenizers fitted on another corpus.
    """
    fingerprint = model_dir.corpus_fingerprint(data.train, settings["src_lang"],
                                               settings["tgt_lang"])
    record = {"fingerprint": fingerprint, "data": data_name(), "train_pairs": len(data.train),
              **settings}
    try:
        saved = model_dir.load_tokenizers(path) if model_dir.has_tokenizers(path) else None
    except DataError:
        if chief:
            raise
        saved = None  # the chief is writing them now: fit the very same ones
    if saved is not None and saved_record is not None:
        if saved_record.get("fingerprint") != fingerprint:
            raise UserError(
                f"--model_dir={path} holds tokenizers fitted on another corpus "
                f"({saved_record.get('data', '?')}, {saved_record.get('train_pairs', '?')} "
                "training pairs): give the data flags of that run, or use a new --model_dir")
        return (*saved, saved_record)
    fitted = fit_tokenizers(data, settings, chief)
    if saved is not None and not all(a.same_as(b) for a, b in zip(saved, fitted, strict=True)):
        # A directory from before corpus records: its tokenizers must be these very ones.
        raise UserError(f"--model_dir={path} holds tokenizers fitted on another corpus: give "
                        "the data flags of that run, or use a new --model_dir")
    return (*fitted, record)


# Configs.


def _config(cls, **values):
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise UserError(str(error)) from None


def _only(saved, fields):
    return None if saved is None else {k: v for k, v in saved.items() if k in fields}


def reconcile(path, train_pairs):
    """The run's settings: the flags (with the defaults that suit the data, for those not
    given) for a new run; on resume, the saved configs with the schedule changes the flags
    make. Reads the directory only.

    Args:
        path: The model directory.
        train_pairs: The number of training pairs.

    Returns:
        (model settings: the ModelConfig fields but the vocabulary sizes, TrainConfig,
        tokenizer settings: {"subword", "vocab_size", "src_lang", "tgt_lang"}, the saved
        corpus record or None).

    Raises:
        UserError: when a flag given explicitly conflicts with the saved config, or the
            settings are invalid.
    """
    explicit = common_flags.explicit_flags()
    saved_model, saved_train, saved_record = model_dir.saved_configs(path)
    where = f"--model_dir={path}"
    defaults = data_defaults(train_pairs, explicit)

    def given(name):
        return FLAGS[name].value if name in explicit else defaults.get(name, FLAGS[name].value)

    given_model = {f.name: given(f.name) for f in dataclasses.fields(ModelConfig)
                   if f.name not in VOCAB_FIELDS}
    model_settings = core_dir.reconcile_config(_only(saved_model, given_model), given_model,
                                               explicit, where=where)
    _config(ModelConfig, **model_settings)
    architecture = model_settings["architecture"]
    for other, fields in ARCHITECTURE_FIELDS.items():
        ignored = [f"--{name}" for name in fields if name in explicit and other != architecture]
        if ignored:
            verb, them = ("applies", "it") if len(ignored) == 1 else ("apply", "them")
            raise UserError(f"{', '.join(ignored)} only {verb} to --architecture={other}, and "
                            f"this run's is {architecture}: add --architecture={other} or "
                            f"drop {them}")
    given_train = {f.name: given(f.name) for f in dataclasses.fields(TrainConfig)}
    train = core_dir.reconcile_config(_only(saved_train, given_train), given_train, explicit,
                                      may_change=SCHEDULE_FIELDS, where=where)
    given_tokenizers = {name: given(name) for name in TOKENIZER_FLAGS}
    tokenizers = core_dir.reconcile_config(_only(saved_record, given_tokenizers),
                                           given_tokenizers, explicit, where=where)
    return model_settings, _config(TrainConfig, **train), tokenizers, saved_record


def resolve_model_dir(dist, seed):
    """--model_dir, or a fresh run directory's path (nothing is created)."""
    workers = strategy.worker_info(dist)[1]
    if not FLAGS.model_dir and workers > 1:
        raise UserError(f"--strategy=multi_worker with {workers} workers needs --model_dir: "
                        "the same directory, on a filesystem they all share")
    return core_dir.resolve(FLAGS.model_dir, ["translate", data_name(), seed])


def main(argv):
    del argv  # cli.run refuses stray arguments
    common = common_flags.common_config_from_flags()
    try:  # before anything else touches TensorFlow (--cpu_devices splits the CPU)
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
    except ValueError as error:  # a missing or malformed TF_CONFIG
        raise UserError(str(error)) from None
    chief = strategy.is_chief(dist)
    path = resolve_model_dir(dist, common.seed)
    data = load_data(FLAGS.data_seed, chief)
    print(f"corpus: {data.summary()}")
    model_settings, train_config, tokenizer_settings, saved_record = reconcile(
        path, len(data.train))
    src_tok, tgt_tok, record = tokenizers_for(path, data, tokenizer_settings, saved_record,
                                              chief)
    model_config = _config(ModelConfig, **model_settings, src_vocab_size=src_tok.vocab_size,
                           tgt_vocab_size=tgt_tok.vocab_size)
    alignments = gold_alignments(data, (src_tok, tgt_tok), train_config, chief)
    print(f"model directory: {path}")
    from translate.trainer import train_and_evaluate  # imports TensorFlow

    train_and_evaluate(data, (src_tok, tgt_tok), model_config, train_config, common, path,
                       dist=dist, data_record=record, alignments=alignments)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
