"""Fixtures of the translate tests. The trained model directories are built once per run
(`built_once`), not once per xdist worker."""

import pytest
from built_once import built_once, trained_once
from translate_tools import TINY_FLAGS, TRANSFORMER_TINY_FLAGS, run_tool


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """A model directory of a tiny two-step translate.train run (do not modify it: copy it)."""
    return trained_once(tmp_path_factory, "translate_trained", run_tool, "translate.train",
                        *TINY_FLAGS)


@pytest.fixture(scope="session")
def trained_transformer(tmp_path_factory):
    """A two-layer Transformer fitted briefly on 300 built-in pairs (do not modify its
    directory): (model directory, corpus). Trained enough that its decodings are not
    arbitrary, so cached and uncached decoding are compared on real beams."""
    from attn_core.flags import CommonConfig
    from translate import builtin_corpus
    from translate.model_config import ModelConfig
    from translate.tokenizer import Tokenizer
    from translate.train_config import TrainConfig
    from translate.trainer import train_and_evaluate

    data = builtin_corpus.builtin_corpus("en-fr", train_size=300, dev_size=8, test_size=24,
                                         seed=5)
    src = Tokenizer.fit([s for s, _ in data.train], "en")
    tgt = Tokenizer.fit([t for _, t in data.train], "fr")
    model = ModelConfig(architecture="transformer", num_layers=2, units=32, heads=4, ff_dim=64,
                        dropout=0.0, src_vocab_size=src.vocab_size,
                        tgt_vocab_size=tgt.vocab_size)
    train = TrainConfig(tokens_per_batch=512, max_steps=200, eval_every=200, warmup_steps=30,
                        decay_steps=200, learning_rate=5e-3, dev_eval_sentences=8,
                        time_budget_minutes=0, label_smoothing=0.0)

    def build(model_dir):
        train_and_evaluate(data, (src, tgt), model, train,
                           CommonConfig(seed=0, precision="float32"), model_dir,
                           log=lambda line: None)

    return built_once(tmp_path_factory, "translate_transformer", build), data


@pytest.fixture(scope="session")
def trained_transformer_dir(tmp_path_factory):
    """A tiny two-step Transformer of 2 decoder layers of 2 heads, trained with guided
    alignment on the built-in corpus (do not modify it: copy it)."""
    return trained_once(tmp_path_factory, "translate_trained_transformer", run_tool,
                        "translate.train", *TRANSFORMER_TINY_FLAGS,
                        "--num_layers=2", "--heads=2", "--ff_dim=32")
