"""The TF tutorial's design that translate is measured against (`benchmarks.keras_nmt_baseline`):
its greedy decoding, its time budget, its scores and its command-line errors."""

import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import keras_nmt_baseline as baseline
from translate.tokenizer import EOS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _always(model, token):
    """Makes the model's every next-token choice `token`, whatever the input."""
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    bias = np.full_like(bias, -10.0)
    bias[token] = 10.0
    logits.set_weights([np.zeros_like(kernel), bias])


def test_greedy_decode_stops_at_eos_or_at_each_sentence_limit():
    model = baseline.build_tutorial_model(src_vocab=10, tgt_vocab=12, units=8, embedding_dim=4)
    sources = [[4], [5, 6, 7], [8, 9]]
    _always(model, 7)
    out = baseline.greedy_decode(model, sources, batch_size=2)
    # ceil(2 * (length + EOS)) + 10 tokens, each sentence its own limit, batches of 2.
    assert [len(ids) for ids in out] == [math.ceil(2 * (len(s) + 1)) + 10 for s in sources]
    assert all(ids == [7] * len(ids) for ids in out)
    _always(model, EOS)
    assert baseline.greedy_decode(model, sources) == [[], [], []]


def test_train_for_stops_at_the_budget():
    rng = np.random.default_rng(0)
    src = [list(rng.integers(4, 12, size=rng.integers(2, 6))) for _ in range(40)]
    model, result = baseline.train_for(src, [list(s) for s in src], 0.03, batch_size=8,
                                       units=8, embedding_dim=4)
    assert result["steps"] >= 1 and np.isfinite(result["loss"])
    assert 1.8 <= result["seconds"] < 60
    assert result["target_tokens_per_second"] > 0
    assert result["parameters"] == model.count_params()
    with pytest.raises(ValueError, match="batch_size=64"):
        baseline.train_for(src, src, 0.03)


def test_bleu_scores_cased_and_lowercased():
    scores = baseline.bleu_scores(["The cat sat on the mat ."], ["the cat sat on the mat ."])
    assert scores["bleu_lowercased"] == pytest.approx(100.0)
    assert scores["bleu"] < 100.0


@pytest.mark.parametrize("args, message", [
    (["--train_src=a.en"], "--train_src and --train_tgt must be given together"),
    (["--time_budget_minutes=1", "--output_file=/nope/out.txt"],
     "--output_file=/nope/out.txt: the folder /nope does not exist"),
])
def test_bad_input_is_one_line_error(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "benchmarks.keras_nmt_baseline", *args],
                            cwd=ROOT, capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
