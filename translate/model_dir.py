"""What a translate model directory holds, and loading a trained model back from it.

    model_dir/
      model_config.json                the ModelConfig (what the tools rebuild the model from)
      train_config.json                the TrainConfig, with the precision policy and seed used
      corpus.json                      the fingerprint of the corpus the tokenizers were built
                                       from, and the tokenizer settings
      source.tokenizer.json, target.tokenizer.json (+ .model for SentencePiece)
      checkpoints/, best/              attn_core.checkpoint managers (best = by dev BLEU)
      metrics.json, events.out.tfevents.*, attention/*.png, test_translations.txt
      average.json                     only in a directory of translate.average: the trained
                                       directory and the steps averaged (its checkpoints/
                                       holds the averaged weights, without optimizer state)
      data/{dev,test}.{src,ref,align}  with gold alignments (the built-in corpus): the dev and
                                       test pairs and their gold word links (Pharaoh), for
                                       translate.evaluate --ref_alignments

The general rules (lock, resume, atomic writes) are those of `attn_core.model_dir`; this
module knows the files of translate's runs.
"""

import pathlib
import sys

from attn_core import checkpoint
from attn_core import model_dir as core_dir
from translate.data_error import DataError
from translate.model_config import ModelConfig, upgrade_saved
from translate.tokenizer import Tokenizer

MODEL_CONFIG = "model_config.json"
TRAIN_CONFIG = "train_config.json"
CORPUS_RECORD = "corpus.json"
TRAIN_HINT = " (train one with translate.train)"


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def save_model_config(model_dir, config):
    core_dir.write_json(pathlib.Path(model_dir) / MODEL_CONFIG, config)


def load_model_config(model_dir):
    """The `ModelConfig` saved in `model_dir`.

    Raises:
        DataError: When there is none, or it is not a valid model config.
    """
    path = pathlib.Path(model_dir) / MODEL_CONFIG
    saved = core_dir.read_json(path, "model config")
    if saved is None:
        raise DataError(f"no trained model here{TRAIN_HINT}", path=path)
    try:
        return ModelConfig(**upgrade_saved(saved))
    except (TypeError, ValueError) as error:
        raise DataError(f"not a valid model config: {error}", path=path) from None


def corpus_fingerprint(train_pairs, src_lang, tgt_lang):
    """The fingerprint of what tokenizers are fitted on: the training pairs and languages."""
    return core_dir.fingerprint(src_lang, tgt_lang, [list(pair) for pair in train_pairs])


def has_tokenizers(model_dir):
    return (pathlib.Path(model_dir) / "source.tokenizer.json").exists()


def load_tokenizers(model_dir):
    return Tokenizer.load(model_dir, "source"), Tokenizer.load(model_dir, "target")


def save_tokenizers(model_dir, tokenizers, record):
    """Saves the tokenizers, then the record of the corpus they were fitted on.

    The record goes last: a directory whose record matches holds complete tokenizers.
    """
    src, tgt = tokenizers
    src.save(model_dir, "source")
    tgt.save(model_dir, "target")
    core_dir.write_json(pathlib.Path(model_dir) / CORPUS_RECORD, record)


def build_and_restore(model_dir, config, log=_stderr):
    """The model of `config` with the best intact checkpoint of `model_dir` (else the newest
    intact regular one).

    A damaged newest checkpoint is skipped with one line through `log` (see
    `attn_core.checkpoint.CheckpointManager.restore`); a `best/` with no intact checkpoint
    is skipped for `checkpoints/`.

    Returns:
        (model, step).

    Raises:
        DataError: When the directory has no intact checkpoint.
        UserError: When its checkpoint holds another model.
    """
    import tensorflow as tf

    from translate.trainer import build_model

    model_dir = pathlib.Path(model_dir)
    model = build_model(config)
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    damaged = []
    for sub in ("best", "checkpoints"):
        manager = checkpoint.CheckpointManager(model_dir / sub, read_only=True, log=log)
        if not manager.steps:
            continue
        if manager.restored_step() is None:
            damaged.append(str(manager.directory))
            log(f"warning: no intact checkpoint in {manager.directory}; skipping it")
            continue
        state = manager.restore({"model": model}) or {}
        return model, int(state.get("step", manager.restored))
    if damaged:
        raise DataError(f"no intact checkpoint in {' or '.join(damaged)}")
    raise DataError(f"no checkpoint found{TRAIN_HINT}", path=model_dir)


def load_trained(model_dir, log=_stderr):
    """Rebuilds the model of `model_dir` with its best checkpoint (else the latest).

    Nothing is written into the directory.

    Returns:
        (model, source tokenizer, target tokenizer, step).

    Raises:
        UserError: When the directory, its config, its tokenizers or an intact checkpoint is
            missing, or the checkpoint holds another model.
    """
    model_dir = core_dir.require_existing(model_dir, "--model_dir", MODEL_CONFIG, TRAIN_HINT)
    config = load_model_config(model_dir)
    src_tok, tgt_tok = load_tokenizers(model_dir)
    model, step = build_and_restore(model_dir, config, log)
    return model, src_tok, tgt_tok, step


def saved_configs(model_dir):
    """(saved model config, saved train config, corpus record), each a dict or None.

    Reads only: a run that then fails leaves the directory as it was.

    Raises:
        UserError: When a file exists but is not valid JSON.
    """
    model_dir = pathlib.Path(model_dir)
    return (upgrade_saved(core_dir.read_json(model_dir / MODEL_CONFIG, "model config")),
            core_dir.read_json(model_dir / TRAIN_CONFIG, "train config"),
            core_dir.read_json(model_dir / CORPUS_RECORD, "corpus record"))

