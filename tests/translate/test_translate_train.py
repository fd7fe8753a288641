"""translate end to end on tiny configurations: training, resuming, decoding,
export, and the command-line errors."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from attn_core.flags import CommonConfig
from translate import builtin_corpus
from translate.attention_factory import ATTENTIONS
from translate.model_config import ModelConfig
from translate.tokenizer import Tokenizer
from translate.train_config import TrainConfig

TINY_TRAIN = TrainConfig(tokens_per_batch=256, max_steps=3, eval_every=3, warmup_steps=1,
                         decay_steps=10, dev_eval_sentences=8, time_budget_minutes=0)


@pytest.fixture(scope="module")
def tiny_data():
    data = builtin_corpus.builtin_corpus("en-fr", train_size=200, dev_size=8, test_size=8, seed=1)
    src = Tokenizer.fit([s for s, _ in data.train], "en")
    tgt = Tokenizer.fit([t for _, t in data.train], "fr")
    return data, (src, tgt)


def _train(workdir, data, tokenizers, train_config=TINY_TRAIN, precision="float32",
           **model_kwargs):
    from translate.trainer import train_and_evaluate

    src, tgt = tokenizers
    workdir.mkdir(parents=True, exist_ok=True)
    src.save(workdir, "source")
    tgt.save(workdir, "target")
    sizes = {"units": 32, "embedding_dim": 16, "heads": 2, "ff_dim": 32, "num_layers": 1}
    model_config = ModelConfig(src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size,
                               **(sizes | model_kwargs))
    from translate import model_dir

    model_dir.save_model_config(workdir, model_config)
    common = CommonConfig(workdir=str(workdir), seed=0, precision=precision, strategy="default",
                          cpu_devices=0, jit_compile=False)
    lines = []
    metrics = train_and_evaluate(data, tokenizers, model_config, train_config, common, workdir,
                                 log=lines.append)
    return metrics, lines


@pytest.mark.parametrize(
    "model_kwargs",
    [{"attention": name} for name in ATTENTIONS]
    + [{"architecture": "transformer"}, {"cell": "lstm", "attention": "luong_general"}],
    ids=[*ATTENTIONS, "transformer", "lstm"],
)
def test_tiny_configuration_trains_and_writes_outputs(tmp_path, tiny_data, model_kwargs):
    data, tokenizers = tiny_data
    metrics, _ = _train(tmp_path, data, tokenizers, **model_kwargs)
    assert metrics["train_steps"] == 3 and metrics["test_sentences"] == 8
    for key in ("bleu", "chrf", "decode", "beam_width", "train_minutes", "tokens_per_second",
                "replicas"):
        assert key in metrics
    assert json.loads((tmp_path / "metrics.json").read_text())["train_steps"] == 3
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert list((tmp_path / "attention").glob("attention_dev_0_3.png"))


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training_gives_finite_results(tmp_path, tiny_data, precision):
    import keras

    data, tokenizers = tiny_data
    try:
        metrics, _ = _train(tmp_path, data, tokenizers, precision=precision)
    finally:
        keras.config.set_dtype_policy("float32")
    assert metrics["train_steps"] == 3 and np.isfinite(metrics["chrf"])


def test_resume_continues_the_step_counter(tmp_path, tiny_data):
    data, tokenizers = tiny_data
    _train(tmp_path, data, tokenizers)
    metrics, lines = _train(tmp_path, data, tokenizers,
                            dataclasses.replace(TINY_TRAIN, max_steps=5))
    assert "resumed from step 3" in lines
    assert metrics["train_steps"] == 5


def test_beam_search_of_a_trained_model_and_beam_one_equals_greedy(tmp_path, tiny_data):
    from translate.model_dir import load_trained
    from translate.translator import Translator

    data, tokenizers = tiny_data
    _train(tmp_path, data, tokenizers, dataclasses.replace(TINY_TRAIN, max_steps=20,
                                                          eval_every=20))
    model, src, tgt, _ = load_trained(tmp_path)
    sentences = [s for s, _ in data.test]
    greedy = Translator(model, src, tgt).translate(sentences)
    beam1 = Translator(model, src, tgt, beam_width=1).translate(sentences)
    beam4 = Translator(model, src, tgt, beam_width=4, n_best=3).translate(sentences)
    for g, b1, b4 in zip(greedy, beam1, beam4, strict=True):
        assert g[0].text == b1[0].text
        np.testing.assert_allclose(g[0].alignments, b1[0].alignments)
        scores = [h.score for h in b4]
        assert scores == sorted(scores, reverse=True)
        assert b4[0].score >= g[0].score - 1e-4
        assert b4[0].alignments.shape == (len(b4[0].target_pieces), len(b4[0].source_pieces))
    # One sentence alone: a static batch of 1 must not trip the while loop's shape checks.
    penalized = Translator(model, src, tgt, beam_width=4, length_penalty=1.0)
    one = penalized.translate(sentences[:1])
    assert one[0][0].text == penalized.translate(sentences)[0][0].text


def test_learns_to_90_percent_token_accuracy_on_a_tiny_builtin_subset(tmp_path):
    """Fits 150 built-in pairs: teacher-forced token accuracy on them reaches 90%."""
    import tensorflow as tf

    from translate.input_pipeline import make_dataset
    from translate.model_dir import load_trained

    data = builtin_corpus.builtin_corpus("en-fr", train_size=150, dev_size=8, test_size=8,
                                         seed=3)
    tokenizers = (Tokenizer.fit([s for s, _ in data.train], "en"),
                  Tokenizer.fit([t for _, t in data.train], "fr"))
    config = TrainConfig(tokens_per_batch=512, max_steps=400, eval_every=400,
                         warmup_steps=30, decay_steps=400, learning_rate=5e-3,
                         dev_eval_sentences=8, time_budget_minutes=0, label_smoothing=0.0)
    _train(tmp_path, data, tokenizers, config, units=128, embedding_dim=32, dropout=0.0)
    model, src, tgt, _ = load_trained(tmp_path)
    dataset = make_dataset(src.encode_batch([s for s, _ in data.train]),
                           tgt.encode_batch([t for _, t in data.train]), 4096, shuffle=False)
    hits = total = 0
    for batch in dataset:
        logits = model({"source": batch["source"], "decoder_in": batch["decoder_in"]})
        target = batch["target"].numpy()
        real = target != 0
        hits += int(((tf.argmax(logits, -1).numpy() == target) & real).sum())
        total += int(real.sum())
    assert hits / total >= 0.90, hits / total


def _cli(module, *args, cwd=None, stdin=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, input=stdin, timeout=600)


def test_export_runs_without_the_project_and_through_saved_model_cli(tmp_path, tiny_data):
    data, tokenizers = tiny_data
    _train(tmp_path / "model", data, tokenizers)
    export = tmp_path / "export"
    result = _cli("translate.export", f"--model_dir={tmp_path / 'model'}",
                  f"--export_dir={export}")
    assert result.returncode == 0, result.stderr[-2000:]
    script = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("attn_core", "translate"):
            raise ImportError("the project must not be needed: " + name)
sys.meta_path.insert(0, Block())
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["translate"](sentences=tf.constant(["May 3, 1950", "twelve"]))
print(out["translation"].shape, out["attention"].shape[0], out["attention"].dtype.name)
"""
    result = subprocess.run([sys.executable, "-c", script, str(export)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["(2,)", "2", "float32"]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "run", "--dir", str(export), "--tag_set", "serve", "--signature_def", "translate",
         "--input_exprs", 'sentences=["May 3, 1950"]'],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translation" in result.stdout


@pytest.mark.parametrize(
    "files, flag, message",
    [
        ({}, "--train_file={d}/missing.tsv", "missing.tsv: cannot read"),
        ({"short.tsv": "hello\tbonjour\nlonely line\n"}, "--train_file={d}/short.tsv",
         "short.tsv:2:"),
        ({"bytes.tsv": b"ok\tbien\n\xff\xfe\tx\n"}, "--train_file={d}/bytes.tsv", "bytes.tsv:2:"),
        ({"a.src": "one\ntwo\n", "a.tgt": "un\n"},
         "--train_src={d}/a.src --train_tgt={d}/a.tgt", "a.src"),
        ({"empty.tsv": "hello\tbonjour\n\tvide\n"}, "--train_file={d}/empty.tsv",
         "empty.tsv:2:"),
    ],
    ids=["missing", "columns", "utf8", "line_counts", "empty_source"],
)
def test_bad_data_is_a_one_line_error_with_exit_code_2(tmp_path, files, flag, message):
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    args = flag.format(d=tmp_path).split()
    result = _cli("translate.train", f"--model_dir={tmp_path / 'model'}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_translate_without_a_checkpoint_says_so(tmp_path):
    result = _cli("translate.translate", f"--model_dir={tmp_path}", stdin="hello\n")
    assert result.returncode == 2
    assert "no trained model" in result.stderr and "Traceback" not in result.stderr
