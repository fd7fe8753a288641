"""What a model directory holds, and loading a trained model back from it.

    model_dir/
      model_config.json       the ModelConfig
      source.vocab.*, target.vocab.*   the tokenizers
      checkpoints/, best/      attn_core.checkpoint managers (best = by dev BLEU)
      metrics.json, events.out.tfevents.*, attention/*.png
"""

import dataclasses
import json
import pathlib

import tensorflow as tf

from attn_core import checkpoint
from translate.data_error import DataError
from translate.model_config import ModelConfig
from translate.tokenizer import Tokenizer

CONFIG_NAME = "model_config.json"


def save_model_config(model_dir, config):
    path = pathlib.Path(model_dir) / CONFIG_NAME
    checkpoint.atomic_write(path, lambda f: f.write(
        json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True).encode()))


def load_model_config(model_dir):
    path = pathlib.Path(model_dir) / CONFIG_NAME
    try:
        return ModelConfig(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataError(f"{path}: no trained model here (run translate.train first)") from None
    except (json.JSONDecodeError, TypeError) as error:
        raise DataError(f"{path}: not a valid model config: {error}") from None


def load_tokenizers(model_dir):
    return Tokenizer.load(model_dir, "source"), Tokenizer.load(model_dir, "target")


def load_trained(model_dir):
    """Rebuilds the model with its best checkpoint (else the latest).

    Returns:
        (model, source tokenizer, target tokenizer, step).

    Raises:
        DataError: when the directory has no config or no checkpoint.
    """
    from translate.trainer import build_model

    model_dir = pathlib.Path(model_dir)
    config = load_model_config(model_dir)
    src_tok, tgt_tok = load_tokenizers(model_dir)
    model = build_model(config)
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    for sub in ("best", "checkpoints"):
        manager = checkpoint.CheckpointManager(model_dir / sub)
        if manager.latest() is not None:
            # checkpoints/ holds [model, optimizer]: the model's values come first.
            state = manager.restore([model], prefix=True) or {}
            return model, src_tok, tgt_tok, int(state.get("step", manager.latest()))
    raise DataError(f"{model_dir}: no checkpoint found (train it first with translate.train)")
