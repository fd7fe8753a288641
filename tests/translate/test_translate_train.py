"""translate's training library on tiny configurations: the model variants train and write
their outputs, the first steps under each precision policy, and a model fitted on a tiny
corpus (its accuracy, beam search with it). The command-line tools, resuming included, are
in test_translate_cli.py."""

import dataclasses
import json

import keras
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
TINY_SIZES = {"architecture": "rnn", "units": 32, "embedding_dim": 16, "heads": 2, "ff_dim": 32,
              "num_layers": 1}


@pytest.fixture(scope="module")
def tiny_data():
    data = builtin_corpus.builtin_corpus("en-fr", train_size=200, dev_size=8, test_size=8, seed=1)
    src = Tokenizer.fit([s for s, _ in data.train], "en")
    tgt = Tokenizer.fit([t for _, t in data.train], "fr")
    return data, (src, tgt)


def _model_config(tokenizers, **model_kwargs):
    src, tgt = tokenizers
    return ModelConfig(src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size,
                       **(TINY_SIZES | model_kwargs))


def _train(model_dir, data, tokenizers, train_config=TINY_TRAIN, precision="float32",
           **model_kwargs):
    from translate.trainer import train_and_evaluate

    common = CommonConfig(seed=0, precision=precision)
    lines = []
    metrics = train_and_evaluate(data, tokenizers, _model_config(tokenizers, **model_kwargs),
                                 train_config, common, model_dir, log=lines.append)
    return metrics, lines


def _event_tags(model_dir):
    import tensorflow as tf

    tags = set()
    for path in model_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    return tags


@pytest.mark.parametrize(
    "model_kwargs",
    [{}, {"architecture": "transformer"}, {"cell": "lstm", "attention": "luong_general"}],  # rnn
    ids=["rnn", "transformer", "lstm"],
)
def test_tiny_configuration_trains_and_writes_outputs(tmp_path, tiny_data, model_kwargs):
    data, tokenizers = tiny_data
    metrics, lines = _train(tmp_path, data, tokenizers, **model_kwargs)
    assert metrics["train_steps"] == 3 and metrics["test_sentences"] == 8
    for key in ("bleu", "chrf", "decode", "beam_width", "train_minutes", "tokens_per_second",
                "replicas"):
        assert key in metrics
    assert metrics["precision"] == "float32" and metrics["skipped_steps"] == 0
    assert "precision: float32" in lines
    assert json.loads((tmp_path / "metrics.json").read_text())["train_steps"] == 3
    assert json.loads((tmp_path / "train_config.json").read_text())["precision"] == "float32"
    assert {"losses/train", "charts/loss_scale", "charts/skipped_steps",
            "eval/bleu"} <= _event_tags(tmp_path)
    assert {"attention/dev_0", "attention/dev_1", "attention/dev_2"} <= _event_tags(tmp_path)


@pytest.mark.parametrize("attention", [a for a in ATTENTIONS if a != "luong_general"])
@pytest.mark.usefixtures("eager_functions")
def test_every_attention_trains_and_decodes(tmp_path, tiny_data, attention):
    """A step and a greedy decoding with each attention of the RNN decoder (luong_general,
    the default, trains end to end above)."""
    from translate.trainer import Trainer
    from translate.translator import Translator

    data, tokenizers = tiny_data
    trainer = Trainer(data, tokenizers, _model_config(tokenizers, attention=attention),
                      TINY_TRAIN, CommonConfig(precision="float32"), tmp_path,
                      log=lambda line: None)
    assert np.isfinite(trainer.train_step())
    [[out]] = Translator(trainer.model, *tokenizers).translate([data.dev[0][0]])
    assert out.alignments.shape == (len(out.target_pieces), len(out.source_pieces))
    assert np.all(np.isfinite(out.alignments))


def test_train_step_and_decoding_trace_once_for_batches_of_every_shape(tmp_path, tiny_data):
    """Batches of other lengths and sizes reuse the first trace: each retrace costs seconds
    of graph building at the start of every run (and of most tests here)."""
    from translate.trainer import Trainer
    from translate.translator import Translator

    data, tokenizers = tiny_data
    trainer = Trainer(data, tokenizers, _model_config(tokenizers), TINY_TRAIN,
                      CommonConfig(precision="float32"), tmp_path, log=lambda line: None)
    shapes, next_batch = set(), trainer._next_batch

    def recorded():
        batch = next_batch()
        shapes.add(tuple(batch["source"].shape))
        return batch

    trainer._next_batch = recorded
    for _ in range(4):
        trainer.train_step()
    assert len(shapes) > 1, shapes  # the bucketed batches do differ
    assert trainer._step_fn.experimental_get_tracing_count() == 1
    translator = Translator(trainer.model, *tokenizers)
    # 8 sentences of several lengths in batches of 3: three source shapes, the last one
    # smaller.
    translator.translate([s for s, _ in data.dev], batch_size=3)
    assert translator.decode_batch.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
def test_first_steps_under_each_precision_are_finite_and_close_to_float32(request, tmp_path,
                                                                         tiny_data, architecture):
    """Two steps of the same model (same seed, no dropout) under each policy: the mixed
    policies compute in 16 bits, so their losses are close to float32's, not equal. The
    Transformer skips bfloat16 (the RNN covers the policy) and keeps float16, where
    attention logits may overflow."""
    from translate.trainer import Trainer

    # The Transformer's steps run eagerly, in a fraction of its tracing time; the RNN's
    # eager steps under the mixed policies take longer than its graph.
    if architecture == "transformer":
        request.getfixturevalue("eager_functions")
    data, tokenizers = tiny_data
    config = _model_config(tokenizers, architecture=architecture, dropout=0.0)
    losses, lines = {}, []
    policies = ("float32", "mixed_float16") + (
        ("mixed_bfloat16",) if architecture == "rnn" else ())
    for policy in policies:
        trainer = Trainer(data, tokenizers, config, TINY_TRAIN, CommonConfig(precision=policy),
                          tmp_path / policy, log=lines.append)
        losses[policy] = [trainer.train_step() for _ in range(2)]
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer) == (
            policy == "mixed_float16")
        assert trainer.loss_scale > 0 and trainer.state.skipped_steps in (0, 1, 2)
        assert f"precision: {policy}" in lines
        keras.config.set_dtype_policy("float32")
    assert not list(tmp_path.iterdir())  # a Trainer writes nothing until it is started
    for policy, values in losses.items():
        assert np.all(np.isfinite(values)), (policy, values)
        np.testing.assert_allclose(values[0], losses["float32"][0], rtol=0.02, err_msg=policy)
        np.testing.assert_allclose(values[1], losses["float32"][1], rtol=0.05, err_msg=policy)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A model fitted on 150 built-in pairs: (model directory, corpus)."""
    model_dir = tmp_path_factory.mktemp("learned")
    data = builtin_corpus.builtin_corpus("en-fr", train_size=150, dev_size=8, test_size=8,
                                         seed=3)
    tokenizers = (Tokenizer.fit([s for s, _ in data.train], "en"),
                  Tokenizer.fit([t for _, t in data.train], "fr"))
    config = TrainConfig(tokens_per_batch=512, max_steps=400, eval_every=400,
                         warmup_steps=30, decay_steps=400, learning_rate=5e-3,
                         dev_eval_sentences=8, time_budget_minutes=0, label_smoothing=0.0)
    _train(model_dir, data, tokenizers, config, units=128, embedding_dim=32, dropout=0.0)
    return model_dir, data


def test_learns_to_90_percent_token_accuracy_on_a_tiny_builtin_subset(learned):
    """Teacher-forced token accuracy on the 150 training pairs reaches 90%."""
    import tensorflow as tf

    from translate.input_pipeline import make_dataset
    from translate.model_dir import load_trained

    model_dir, data = learned
    model, src, tgt, _ = load_trained(model_dir)
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


def test_beam_search_of_a_trained_model_and_beam_one_equals_greedy(learned):
    from translate.model_dir import load_trained
    from translate.translator import Translator

    model_dir, data = learned
    model, src, tgt, _ = load_trained(model_dir)
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


def test_guided_alignment_sum_golden_value():
    import tensorflow as tf

    from translate.trainer import guided_alignment_sum

    gold = tf.constant([[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # [1, 3, 3]
    attention = tf.constant([[[0.25, 0.5, 0.25], [0.2, 0.3, 0.5], [0.0, 0.1, 0.9]]])
    expected = -(0.5 * np.log(0.25) + 0.5 * np.log(0.5) + np.log(0.9))
    np.testing.assert_allclose(guided_alignment_sum(gold, attention), expected, rtol=1e-6)
    # A zero attention on a gold link is clipped, not -inf.
    assert np.isfinite(guided_alignment_sum(gold, tf.zeros_like(attention)))


@pytest.mark.parametrize("architecture", ["rnn", "transformer"])
@pytest.mark.usefixtures("eager_functions")
def test_guided_alignment_rides_along_when_the_corpus_has_gold_links(tmp_path, tiny_data,
                                                                     architecture):
    """With the built-in corpus's gold links the batches carry the gold matrices and a step
    adds the guided-alignment loss; weight 0 leaves the batches and the loss as they were."""
    from translate.trainer import Trainer

    data, tokenizers = tiny_data
    gold = builtin_corpus.corpus_alignments(data, "en-fr", tokenizers)
    config = _model_config(tokenizers, architecture=architecture)
    guided = Trainer(data, tokenizers, config, TINY_TRAIN, CommonConfig(precision="float32"),
                     tmp_path, log=lambda line: None, alignments=gold)
    assert len(guided.train_links) == len(guided.src_ids)
    assert guided.train_links[0] == gold.train[0]  # word-level: the words are the tokens
    assert "alignment" in guided._next_batch()
    assert np.isfinite(guided.train_step()) and guided.guided_loss > 0
    plain = Trainer(data, tokenizers, config,
                    dataclasses.replace(TINY_TRAIN, guided_alignment_weight=0.0),
                    CommonConfig(precision="float32"), tmp_path, log=lambda line: None,
                    alignments=gold)
    assert plain.train_links is None and "alignment" not in plain._next_batch()
    assert np.isfinite(plain.train_step()) and plain.guided_loss == 0.0


@pytest.mark.parametrize("fixture", ["trained_dir", "trained_transformer_dir"])
def test_decoded_attention_is_that_of_each_hypothesis_own_steps(request, fixture):
    """Beam search's attention of every n-best hypothesis (every layer and head of the
    Transformer) is the attention the model gives that hypothesis when it is fed as the
    decoder input: the beam's own history, not that of another beam."""
    import tensorflow as tf

    from translate.model_dir import load_trained
    from translate.tokenizer import BOS, EOS
    from translate.translator import Translator

    model, src, tgt, _ = load_trained(request.getfixturevalue(fixture))
    source_ids = [src.encode(s) for s in ["May 3, 1950", "Sunday, March 21, 1999", "twelve"]]
    translator = Translator(model, src, tgt, beam_width=4, n_best=4)
    for hyps, ids in zip(translator.translate_ids(source_ids), source_ids, strict=True):
        source = tf.constant([ids + [EOS]])
        for tokens, attention, _ in hyps:
            decoder_in = tf.constant([[BOS] + tokens[:-1]])
            if fixture == "trained_dir":
                _, forced = model.call_with_attention({"source": source,
                                                       "decoder_in": decoder_in})
                forced = np.asarray(forced)[0]  # [T, S]
            else:
                memory, mask, _ = model.encode(source)
                _, layers = model._decoder_layers(decoder_in, memory, mask)
                forced = np.stack([np.asarray(w)[0] for w in layers])  # [L, N, T, S]
            assert attention.shape == forced.shape
            np.testing.assert_allclose(attention, forced, atol=1e-5)


def test_gold_word_links_map_to_the_pieces_of_a_subword_model():
    """en-de with SentencePiece: every piece of a linked word pair is linked, and only
    those."""
    from translate import alignment
    from translate.trainer import _token_links

    data = builtin_corpus.builtin_corpus("en-de", train_size=150, dev_size=2, test_size=2,
                                         seed=2)
    pairs = data.train[:40]
    tokenizers = tuple(Tokenizer.fit([p[side] for p in data.train], lang,
                                     kind="sentencepiece", vocab_size=120)
                       for side, lang in ((0, "en"), (1, "de")))
    word_links = builtin_corpus.gold_alignments(pairs, "en-de")
    for (source, target), words, pieces in zip(pairs, word_links,
                                               _token_links(pairs, word_links, tokenizers),
                                               strict=True):
        source_ids, _ = alignment.word_ids(tokenizers[0].pieces(source), "sentencepiece", "en")
        target_ids, _ = alignment.word_ids(tokenizers[1].pieces(target), "sentencepiece", "de")
        expected = {(p, q) for p, i in enumerate(source_ids) for q, j in enumerate(target_ids)
                    if (i, j) in set(words)}
        assert set(pieces) == expected and expected
