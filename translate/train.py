r"""Train the attention NMT model, then evaluate it on the test split.

    python -m translate.train --model_dir=runs/nmt                  # built-in en->fr corpus
    python -m translate.train --model_dir=runs/spa \
        --train_file=../shared/data/spa-eng/spa.txt --reverse       # spa->eng, seeded dev/test
    python -m translate.train --model_dir=D --train_src=a.de --train_tgt=a.en \
        --dev_src=... --dev_tgt=... --test_src=... --test_tgt=...

A model directory is resumed when it already holds a checkpoint. At the end
it writes `metrics.json` (BLEU and chrF on test, speed) beside TensorBoard
events with attention heatmaps and sample translations.

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

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import dataclasses  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import run_dir, strategy  # noqa: E402
from translate import builtin_corpus, corpus, model_dir  # noqa: E402
from translate.attention_factory import ATTENTIONS  # noqa: E402
from translate.data_error import DataError  # noqa: E402
from translate.model_config import ARCHITECTURES, CELLS, ModelConfig  # noqa: E402
from translate.tokenizer import Tokenizer  # noqa: E402
from translate.train_config import TrainConfig  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    common_flags.define_common_flags()
    flags.DEFINE_alias("mixed_precision", "precision")
    flags.DEFINE_string("model_dir", None, "Model directory (default: a fresh run directory).")
    # Data.
    flags.DEFINE_enum("builtin_pair", "en-fr", ["en-fr", "en-de", "en-es"],
                      "Pair of the built-in corpus (used when no data file is given).")
    flags.DEFINE_integer("train_size", 50000, "Built-in corpus: training pairs.", lower_bound=1)
    flags.DEFINE_integer("dev_size", 1000, "Dev pairs (built-in, or held out).", lower_bound=1)
    flags.DEFINE_integer("test_size", 1000, "Test pairs (built-in, or held out).", lower_bound=1)
    flags.DEFINE_string("train_file", None, "TSV corpus: src<TAB>tgt[<TAB>attribution].")
    flags.DEFINE_bool("reverse", False, "Swap source and target of every file.")
    for split in ("train", "dev", "test"):
        if split != "train":
            flags.DEFINE_string(f"{split}_file", None, f"TSV {split} set.")
        flags.DEFINE_string(f"{split}_src", None, f"Two-file corpus: {split} source lines.")
        flags.DEFINE_string(f"{split}_tgt", None, f"Two-file corpus: {split} target lines.")
    flags.DEFINE_enum("subword", None, ["word", "sentencepiece"],
                      "Tokenization (default: word, or sentencepiece for built-in en-de).")
    flags.DEFINE_integer("vocab_size", None, "Vocabulary size cap (sentencepiece: its size).",
                         lower_bound=8)
    flags.DEFINE_string("src_lang", None, "Source language code for Moses (default from data).")
    flags.DEFINE_string("tgt_lang", None, "Target language code for Moses (default from data).")
    # Model.
    defaults = ModelConfig()
    flags.DEFINE_enum("architecture", defaults.architecture, ARCHITECTURES, "Model family.")
    flags.DEFINE_enum("cell", defaults.cell, CELLS, "RNN cell.")
    flags.DEFINE_integer("num_layers", defaults.num_layers, "Layers.", lower_bound=1)
    flags.DEFINE_integer("units", defaults.units, "RNN units / model size.", lower_bound=1)
    flags.DEFINE_integer("embedding_dim", defaults.embedding_dim, "Embedding size (RNN).",
                         lower_bound=1)
    flags.DEFINE_float("dropout", defaults.dropout, "Dropout rate.", lower_bound=0.0,
                       upper_bound=0.99)
    flags.DEFINE_enum("attention", defaults.attention, ATTENTIONS, "RNN decoder attention.")
    flags.DEFINE_integer("heads", defaults.heads, "Transformer heads.", lower_bound=1)
    flags.DEFINE_integer("ff_dim", defaults.ff_dim, "Transformer feed-forward size.",
                         lower_bound=1)
    # Training.
    train_defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(train_defaults, field.name)
        define = flags.DEFINE_integer if isinstance(value, int) else flags.DEFINE_float
        define(field.name, value, f"TrainConfig.{field.name}.", lower_bound=0)


def _files(split):
    tsv = getattr(FLAGS, f"{split}_file")
    src, tgt = getattr(FLAGS, f"{split}_src"), getattr(FLAGS, f"{split}_tgt")
    if tsv and (src or tgt):
        raise DataError(f"--{split}_file and --{split}_src/--{split}_tgt exclude each other")
    if bool(src) != bool(tgt):
        raise DataError(f"--{split}_src and --{split}_tgt must be given together")
    return tsv or ((src, tgt) if src else None)


def load_data(seed):
    """The corpus from the data flags, and (source, target) language codes."""
    train = _files("train")
    if train is None:
        if _files("dev") or _files("test"):
            raise DataError("--dev_*/--test_* files need training files (--train_file or "
                            "--train_src/--train_tgt)")
        data = builtin_corpus.builtin_corpus(FLAGS.builtin_pair, FLAGS.train_size,
                                             FLAGS.dev_size, FLAGS.test_size, seed)
        src, tgt = FLAGS.builtin_pair.split("-")
        return data, src, tgt, builtin_corpus.recommended_subword(FLAGS.builtin_pair)
    data = corpus.load_corpus(train, _files("dev"), _files("test"), reverse=FLAGS.reverse,
                              dev_size=FLAGS.dev_size, test_size=FLAGS.test_size, seed=seed)
    return data, "en", "en", "word"


def tokenizers_for(workdir, data, src_lang, tgt_lang, subword, save=True):
    """Loads the model directory's tokenizers, or fits them on the training side and (when
    `save`: the chief) saves them. Fitting is deterministic, so a worker that looks before the
    chief has saved them fits the same ones."""
    try:
        return model_dir.load_tokenizers(workdir)
    except (FileNotFoundError, DataError):
        pass
    kind = FLAGS.subword or subword
    src = Tokenizer.fit([s for s, _ in data.train], src_lang, kind=kind,
                        vocab_size=FLAGS.vocab_size)
    tgt = Tokenizer.fit([t for _, t in data.train], tgt_lang, kind=kind,
                        vocab_size=FLAGS.vocab_size)
    if save:
        src.save(workdir, "source")
        tgt.save(workdir, "target")
    return src, tgt


def model_directory(dist, chief, seed):
    """--model_dir, created by the chief (read as is by the others), or a fresh run directory.

    Raises:
        ValueError: for several workers without --model_dir (theirs must be the same).
    """
    workers = strategy.worker_info(dist)[1]
    if not FLAGS.model_dir:
        if workers > 1:
            raise ValueError(f"--strategy=multi_worker with {workers} workers needs "
                             "--model_dir: the same directory, on a filesystem they all share")
        return run_dir.make_run_dir("runs", ["translate", FLAGS.builtin_pair, seed])
    if chief:
        return run_dir.resolve_workdir(FLAGS.model_dir)
    return pathlib.Path(FLAGS.model_dir).expanduser().resolve()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    common = common_flags.common_config_from_flags()
    try:
        # Before anything else touches TensorFlow (--cpu_devices splits the CPU).
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
        chief = strategy.is_chief(dist)
        workdir = model_directory(dist, chief, common.seed)
        data, src_lang, tgt_lang, subword = load_data(common.seed)
        src_lang, tgt_lang = FLAGS.src_lang or src_lang, FLAGS.tgt_lang or tgt_lang
        print(f"corpus: {data.summary()}")
        src_tok, tgt_tok = tokenizers_for(workdir, data, src_lang, tgt_lang, subword,
                                          save=chief)
        model_config = ModelConfig(
            architecture=FLAGS.architecture, cell=FLAGS.cell, num_layers=FLAGS.num_layers,
            units=FLAGS.units, embedding_dim=FLAGS.embedding_dim, dropout=FLAGS.dropout,
            attention=FLAGS.attention, heads=FLAGS.heads, ff_dim=FLAGS.ff_dim,
            src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size,
        )
        if chief:
            model_dir.save_model_config(workdir, model_config)
        train_config = TrainConfig(**{f.name: getattr(FLAGS, f.name)
                                      for f in dataclasses.fields(TrainConfig)})
    except (DataError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"model directory: {workdir}")
    from translate.trainer import train_and_evaluate  # imports TensorFlow

    try:
        train_and_evaluate(data, (src_tok, tgt_tok), model_config, train_config, common,
                           workdir, dist=dist)
    except DataError as error:  # a batch too small to split, workers that disagree
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
