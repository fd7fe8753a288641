r"""The anchor of translate: a plain Keras encoder-decoder in the TF tutorial's design.

"Neural machine translation with attention" (tensorflow.org/text/tutorials/nmt_with_attention)
built at the size of our RNN model's defaults (GRU 256, embeddings 128), trained the tutorial's
way: `model.fit` with Adam and the masked cross-entropy on shuffled batches of 64 sentences,
each padded to its longest sentence (no bucketing), float32. The tutorial's extra metrics
(masked accuracy, the loss again) are left out: they are reporting, not training.

Speed (--steps timed steps) or quality (--time_budget_minutes of training, then greedy
decoding of the test split and its cased and lowercased BLEU, as the tutorial decodes):

    python -m benchmarks.keras_nmt_baseline --train_file=../shared/data/spa-eng/spa.txt \
        --reverse --train_size=20000 --steps=200
    python -m benchmarks.keras_nmt_baseline --steps=50          # built-in en->fr corpus
    python -m benchmarks.keras_nmt_baseline --train_src=train.en --train_tgt=train.es \
        --test_src=test.en --test_tgt=test.es --time_budget_minutes=25

The corpus (a TSV file or two files a split, as `translate.train` takes them), its seeded
dev/test hold-out and the length filter are those `python -m translate.train` uses with its
defaults, so the test split is the one our run is scored on. The tokenizers are word level,
as the tutorial's are (SentencePiece for built-in en-de, as translate.train's), so the
vocabularies, and hence the embedding and output layers, have the sizes of our model's with
`--subword=word`. It prints one line of results (with our RNN's parameter count beside the
tutorial model's) and writes --json_out.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import itertools  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402
from keras import ops  # noqa: E402

from attn_core.errors import UserError  # noqa: E402
from translate.tokenizer import BOS, EOS, PAD  # noqa: E402

FLAGS = flags.FLAGS


def build_tutorial_model(src_vocab, tgt_vocab, units=256, embedding_dim=128):
    """The tutorial's encoder-decoder, with our embedding size.

    - Encoder: Embedding(mask_zero) and Bidirectional(GRU(units, return_sequences=True),
      merge_mode="sum"), so the context has `units` features.
    - Decoder: Embedding(mask_zero), GRU(units, return_sequences, return_state) from a zero
      state (no bridge, no input feeding), then CrossAttention = one-head
      MultiHeadAttention(key_dim=units) over the context + Add + LayerNormalization, then
      Dense(tgt_vocab).

    Compared with our default `translate.rnn_seq2seq.RNNSeq2Seq` (GRU 256, embeddings 128),
    whose encoder concatenates the two directions and projects them to `units`, whose
    decoder starts from a tanh bridge of the mean memory and feeds the previous attentional
    vector back into the GRU (input 128 + 256), and whose Luong "general" attention ends in
    a Dense(2U -> U) combine layer: the embeddings, encoder GRUs and output layer are the
    same size, and this model has 326,400 fewer parameters whatever the vocabularies
    (U=256, E=128: decoder GRU 296,448 vs 493,056; MHA 263,168 + LayerNorm 512 vs memory
    projection 131,072 + bridge 65,792 + attention 65,536 + combine 131,072), e.g.
    10,609,539 vs 10,935,939 (3% fewer) on spa->eng with vocabularies 28,825 -> 14,979.

    Letters: B batch, S source length, T target length, U units, V tgt_vocab.

    Args:
        src_vocab: source vocabulary size (id 0 is padding).
        tgt_vocab: target vocabulary size (id 0 is padding).
        units: GRU units and attention key size.
        embedding_dim: embedding size of both sides.

    Returns:
        A `keras.Model` from {"source": int32 [B, S], "decoder_in": int32 [B, T]} to float32
        logits [B, T, V].
    """
    source = keras.Input((None,), dtype="int32", name="source")
    decoder_in = keras.Input((None,), dtype="int32", name="decoder_in")
    gru = dict(return_sequences=True, recurrent_initializer="glorot_uniform")
    # Encoder.
    x = keras.layers.Embedding(src_vocab, embedding_dim, mask_zero=True,
                               name="src_embedding")(source)  # [B, S, E]
    context = keras.layers.Bidirectional(keras.layers.GRU(units, **gru), merge_mode="sum",
                                         name="encoder")(x)  # [B, S, U]
    # Decoder.
    y = keras.layers.Embedding(tgt_vocab, embedding_dim, mask_zero=True,
                               name="tgt_embedding")(decoder_in)  # [B, T, E]
    y, _ = keras.layers.GRU(units, return_state=True, name="decoder", **gru)(y)  # [B, T, U]
    attended = keras.layers.MultiHeadAttention(num_heads=1, key_dim=units,
                                               name="cross_attention")(query=y, value=context)
    y = keras.layers.LayerNormalization(name="layer_norm")(keras.layers.Add()([y, attended]))
    logits = keras.layers.Dense(tgt_vocab, name="logits")(y)  # [B, T, V]
    return keras.Model({"source": source, "decoder_in": decoder_in}, logits,
                       name="tutorial_nmt")


def masked_loss(y_true, y_pred):
    """The tutorial's loss: y_true int [B, T] (0 is padding), y_pred logits [B, T, V] ->
    the cross-entropy averaged over the real tokens (a scalar)."""
    loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    mask = ops.cast(ops.not_equal(y_true, PAD), loss.dtype)  # [B, T]
    return ops.sum(loss * mask) / ops.sum(mask)


def _pad(rows):
    """Lists of ids -> int32 [len(rows), longest], 0-padded."""
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def batch_stream(src_ids, tgt_ids, batch_size, seed=0):
    """Training batches made as translate.input_pipeline makes its examples, without
    bucketing, for ever: the sentences shuffled anew each pass, cut into full batches of
    `batch_size`, each padded to its own longest sentence.

    Yields:
        (inputs, target, tokens): inputs {"source": int32 [B, S] (src + [EOS]),
        "decoder_in": int32 [B, T] ([BOS] + tgt)}, target int32 [B, T] (tgt + [EOS]), and
        tokens, the number of real (non-padding) target tokens.
    """
    if len(src_ids) < batch_size:
        raise ValueError(f"Expected at least batch_size={batch_size} sentence pairs. "
                         f"Received: {len(src_ids)}")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(src_ids))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            picked = order[start : start + batch_size]
            inputs = {"source": _pad([list(src_ids[i]) + [EOS] for i in picked]),
                      "decoder_in": _pad([[BOS] + list(tgt_ids[i]) for i in picked])}
            target = _pad([list(tgt_ids[i]) + [EOS] for i in picked])
            yield inputs, target, int(np.count_nonzero(target))


def padded_batches(src_ids, tgt_ids, batch_size, count, seed=0):
    """The first `count` batches of `batch_stream`, as a list."""
    return list(itertools.islice(batch_stream(src_ids, tgt_ids, batch_size, seed), count))


def _dataset(batches):
    """A prefetching tf.data.Dataset of (inputs, target) from an iterable of batches."""
    spec = tf.TensorSpec([None, None], tf.int32)
    return tf.data.Dataset.from_generator(
        lambda: ((inputs, target) for inputs, target, _ in batches),
        output_signature=({"source": spec, "decoder_in": spec}, spec),
    ).prefetch(2)


def _compiled_model(src_vocab, tgt_vocab, units, embedding_dim, seed, jit_compile=False):
    """The tutorial model in float32 whatever the global policy, compiled the tutorial's way."""
    keras.utils.set_random_seed(seed)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        model = build_tutorial_model(src_vocab, tgt_vocab, units, embedding_dim)
    finally:
        keras.config.set_dtype_policy(policy)
    model.compile(optimizer=keras.optimizers.Adam(), loss=masked_loss, jit_compile=jit_compile)
    return model


class _Clock(keras.callbacks.Callback):
    """Notes the wall and process CPU times at the end of batch `warmup_steps` and of the
    last batch, once the step's loss is computed (so asynchronous devices have finished it)."""

    def __init__(self, warmup_steps, total_steps):
        super().__init__()
        self.marks, self.times, self.loss = (warmup_steps, total_steps), [], None

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in self.marks:
            self.loss = float(logs["loss"])  # waits for the step
            self.times.append((time.perf_counter(), time.process_time()))


def _vocab_sizes(src_ids, tgt_ids, src_vocab=None, tgt_vocab=None):
    """The given vocabulary sizes, or the largest id seen + 1."""
    return (int(src_vocab or 1 + max(max(s, default=EOS) for s in src_ids)),
            int(tgt_vocab or 1 + max(max(t, default=EOS) for t in tgt_ids)))


class _Budget(keras.callbacks.Callback):
    """Stops `model.fit` once `seconds` of wall time have passed since training began (the
    first step's tracing included, as in translate.train's budget, which leaves out only its
    dev evaluations; the tutorial's loop has none); counts the steps."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.steps, self.loss, self.start = seconds, 0, None, None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.perf_counter() - self.start >= self.seconds:
            self.loss = float(logs["loss"])
            self.model.stop_training = True


def measure(src_ids, tgt_ids, steps, batch_size=64, warmup_steps=5, jit_compile=False, *,
            src_vocab=None, tgt_vocab=None, units=256, embedding_dim=128, seed=0):
    """Trains the tutorial model with `model.fit` and times it.

    Args:
        src_ids: source token ids a sentence (no EOS), as our tokenizer's `encode_batch` gives.
        tgt_ids: target token ids a sentence (no BOS/EOS), as many.
        steps: timed training steps (batches).
        batch_size: sentences a batch.
        warmup_steps: untimed steps first (the first one traces the train step), >= 1.
        jit_compile: XLA-compile the train step (each new padded shape then compiles anew).
        src_vocab, tgt_vocab: vocabulary sizes (default: the largest id + 1).
        units, embedding_dim: the model size.
        seed: seeds the weights and the shuffle.

    Returns:
        A dict: tokens_per_second (real target tokens, EOS included, per second of the timed
        steps), steps, seconds, cpu_seconds (this process's CPU time in them, all threads: far
        below seconds * cores means other processes had the cores), target_tokens (of the
        timed steps), parameters, loss (the running mean masked loss of the whole fit),
        batch_size, warmup_steps, jit_compile.
    """
    if steps < 1 or warmup_steps < 1:
        raise ValueError(f"Expected steps >= 1 and warmup_steps >= 1. "
                         f"Received: steps={steps}, warmup_steps={warmup_steps}")
    src_vocab, tgt_vocab = _vocab_sizes(src_ids, tgt_ids, src_vocab, tgt_vocab)
    model = _compiled_model(src_vocab, tgt_vocab, units, embedding_dim, seed, jit_compile)
    total = warmup_steps + steps
    batches = padded_batches(src_ids, tgt_ids, batch_size, total, seed)
    clock = _Clock(warmup_steps, total)
    model.fit(_dataset(batches), epochs=1, steps_per_epoch=total, verbose=0, callbacks=[clock],
              shuffle=False)

    (start, start_cpu), (end, end_cpu) = clock.times
    seconds = end - start
    tokens = sum(n for _, _, n in batches[warmup_steps:])
    return {"tokens_per_second": tokens / seconds, "steps": steps, "seconds": seconds,
            "cpu_seconds": end_cpu - start_cpu, "target_tokens": tokens,
            "parameters": model.count_params(), "loss": clock.loss, "batch_size": batch_size,
            "warmup_steps": warmup_steps, "jit_compile": bool(jit_compile)}


def train_for(src_ids, tgt_ids, minutes, batch_size=64, *, src_vocab=None, tgt_vocab=None,
              units=256, embedding_dim=128, seed=0):
    """Trains the tutorial model with `model.fit` for `minutes` of wall time.

    Args:
        src_ids, tgt_ids: token ids a sentence (no EOS / no BOS or EOS), as `measure` takes.
        minutes: the training budget (> 0).
        batch_size, src_vocab, tgt_vocab, units, embedding_dim, seed: as in `measure`.

    Returns:
        (the trained model, a dict: steps, seconds, loss (the running mean masked loss),
        target_tokens_per_second, batch_size, parameters).
    """
    if minutes <= 0:
        raise ValueError(f"Expected minutes > 0. Received: minutes={minutes}")
    if len(src_ids) < batch_size:  # batch_stream would only say so inside tf.data
        raise ValueError(f"Expected at least batch_size={batch_size} sentence pairs. "
                         f"Received: {len(src_ids)}")
    src_vocab, tgt_vocab = _vocab_sizes(src_ids, tgt_ids, src_vocab, tgt_vocab)
    model = _compiled_model(src_vocab, tgt_vocab, units, embedding_dim, seed)
    tokens = []  # of every batch read, prefetched ones included

    def counted():
        for batch in batch_stream(src_ids, tgt_ids, batch_size, seed):
            tokens.append(batch[2])
            yield batch

    budget = _Budget(minutes * 60)
    # One endless epoch; the budget ends it.
    model.fit(_dataset(counted()), epochs=1, verbose=0, callbacks=[budget], shuffle=False)
    seconds = time.perf_counter() - budget.start
    trained = sum(tokens[: budget.steps])
    return model, {"steps": budget.steps, "seconds": seconds, "loss": budget.loss,
                   "target_tokens_per_second": trained / seconds, "batch_size": batch_size,
                   "parameters": model.count_params()}


def greedy_decode(model, src_ids, batch_size=64, ratio=2.0, extra=10):
    """The tutorial's greedy decoding: from [BOS], the most likely next token, until EOS.

    The functional model has no decoder state to carry, so each step re-runs it over the
    prefix, as the tutorial's model would without its stateful GRU; that costs decoding time
    only, which the budget does not count. A sentence stops at EOS or after
    ceil(ratio * source length) + extra tokens (translate's limit).

    Args:
        model: a `build_tutorial_model` model.
        src_ids: token ids a source sentence (no EOS).
        batch_size: sentences decoded together.

    Returns:
        A list of token-id lists (no BOS or EOS), one a source sentence, in order.
    """
    out = []
    for start in range(0, len(src_ids), batch_size):
        rows = src_ids[start : start + batch_size]
        source = _pad([list(r) + [EOS] for r in rows])  # [B, S]
        limits = np.ceil(ratio * np.array([len(r) + 1 for r in rows])).astype(int) + extra
        prefix = np.full((len(rows), 1), BOS, np.int32)  # [B, 1 + t]
        done = np.zeros(len(rows), bool)
        for step in range(int(limits.max())):
            logits = model({"source": source, "decoder_in": prefix}, training=False)
            chosen = np.argmax(ops.convert_to_numpy(logits[:, -1]), axis=-1).astype(np.int32)
            chosen[done] = PAD  # masked, so finished rows change nothing
            prefix = np.concatenate([prefix, chosen[:, None]], axis=1)
            done |= (chosen == EOS) | (step + 1 >= limits)
            if done.all():
                break
        for row in prefix[:, 1:]:
            ids = list(row)
            ids = ids[: ids.index(EOS)] if EOS in ids else ids
            out.append([int(i) for i in ids if i != PAD])
    return out


def bleu_scores(hypotheses, references):
    """Cased BLEU and chrF as translate scores them, and lowercased BLEU (the tutorial
    lowercases its text); sacrebleu's default 13a tokenization. Returns a dict."""
    import sacrebleu

    from translate.trainer import corpus_bleu

    bleu, chrf = corpus_bleu(hypotheses, references)
    lowercased = sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score
    return {"bleu": bleu, "chrf": chrf, "bleu_lowercased": lowercased}


def our_parameters(src_vocab, tgt_vocab, units=256, embedding_dim=128):
    """Parameters of our `translate.train --architecture=rnn` model (GRU) for these
    vocabularies."""
    from translate.model_config import ModelConfig
    from translate.trainer import build_model

    model = build_model(ModelConfig(architecture="rnn", units=units, embedding_dim=embedding_dim,
                                    src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab))
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    return model.count_params()


def _files(split):
    """A split's files from the flags (the baseline has one TSV flag, for training)."""
    from translate import corpus

    return corpus.split_files(split, getattr(FLAGS, f"{split}_file", None),
                              getattr(FLAGS, f"{split}_src"), getattr(FLAGS, f"{split}_tgt"),
                              train_given=bool(FLAGS.train_file or FLAGS.train_src))


def load_data():
    """The corpus as `translate.train` loads it with its defaults (dev and test files as
    given, else --dev_size and --test_size pairs held out with seed --seed), and tokenizers as
    it fits them with `--subword=word` (SentencePiece for built-in en-de) on the training
    split; for a training file, --train_size then draws a seeded sample of the training pairs.

    Returns:
        (training pairs, test pairs, source tokenizer, target tokenizer, the data's name).
    """
    from translate import builtin_corpus, corpus
    from translate.tokenizer import Tokenizer

    train, dev, test = (_files(split) for split in ("train", "dev", "test"))
    if train is not None:
        data = corpus.load_corpus(train, dev, test, reverse=FLAGS.reverse,
                                  dev_size=FLAGS.dev_size, test_size=FLAGS.test_size,
                                  seed=FLAGS.seed)
        src_lang, tgt_lang, kind = "en", "en", "word"
        name = os.path.basename(train if isinstance(train, str) else train[0])
        name += " reversed" if FLAGS.reverse else ""
    else:
        data = builtin_corpus.builtin_corpus(FLAGS.builtin_pair, FLAGS.train_size or 50000,
                                             FLAGS.dev_size, FLAGS.test_size, FLAGS.seed)
        src_lang, tgt_lang = FLAGS.builtin_pair.split("-")
        kind = builtin_corpus.recommended_subword(FLAGS.builtin_pair)
        name = f"built-in {FLAGS.builtin_pair}"
    src_tok = Tokenizer.fit([s for s, _ in data.train], src_lang, kind=kind)
    tgt_tok = Tokenizer.fit([t for _, t in data.train], tgt_lang, kind=kind)
    pairs = data.train
    if train is not None and FLAGS.train_size and FLAGS.train_size < len(pairs):
        picked = np.random.default_rng(FLAGS.seed).choice(len(pairs), FLAGS.train_size,
                                                          replace=False)
        pairs = [pairs[i] for i in np.sort(picked)]
    return pairs, data.test, src_tok, tgt_tok, name


def training_ids(pairs, src_tok, tgt_tok):
    """Token ids of the pairs, those longer than TrainConfig.max_length dropped as
    translate.train drops them: (src_ids, tgt_ids)."""
    from translate.input_pipeline import filter_max_length
    from translate.train_config import TrainConfig

    src_ids, tgt_ids, _ = filter_max_length(src_tok.encode_batch([s for s, _ in pairs]),
                                            tgt_tok.encode_batch([t for _, t in pairs]),
                                            TrainConfig().max_length)
    return src_ids, tgt_ids


def define_flags():
    flags.DEFINE_string("train_file", None, "TSV corpus (default: the built-in corpus).")
    for split in ("train", "dev", "test"):
        flags.DEFINE_string(f"{split}_src", None,
                            f"Two-file corpus: the {split} source sentences, one a line.")
        flags.DEFINE_string(f"{split}_tgt", None,
                            f"Two-file corpus: the {split} target sentences, one a line.")
    flags.DEFINE_bool("reverse", False, "Swap source and target of the files.")
    flags.DEFINE_enum("builtin_pair", "en-fr", ["en-fr", "en-de", "en-es"],
                      "Pair of the built-in corpus.")
    flags.DEFINE_integer("train_size", None, "Built-in corpus: training pairs (default 50000, "
                         "as translate.train). File: a seeded sample of the training pairs "
                         "(default all); the vocabulary is still fitted on all.", lower_bound=1)
    flags.DEFINE_integer("dev_size", 1000, "Dev pairs held out of the training data when no "
                         "dev files are given (as translate.train).", lower_bound=0)
    flags.DEFINE_integer("test_size", 1000, "Test pairs held out of the training data when no "
                         "test files are given (as translate.train).", lower_bound=1)
    flags.DEFINE_integer("steps", 200, "Speed: timed training steps.", lower_bound=1)
    flags.DEFINE_integer("warmup_steps", 5, "Speed: untimed steps first.", lower_bound=1)
    flags.DEFINE_float("time_budget_minutes", 0, "Quality instead of speed: train this many "
                       "minutes, then decode the test split greedily and score it (0: speed).",
                       lower_bound=0)
    flags.DEFINE_string("output_file", "", "Quality: also write the test translations here.")
    flags.DEFINE_integer("batch_size", 64, "Sentences a batch.", lower_bound=1)
    flags.DEFINE_integer("units", 256, "GRU units.", lower_bound=1)
    flags.DEFINE_integer("embedding_dim", 128, "Embedding size.", lower_bound=1)
    flags.DEFINE_bool("jit_compile", False, "Speed: XLA-compile the train step.")
    flags.DEFINE_integer("seed", 0, "Seeds the hold-out, the sample, the weights, the shuffle.",
                         lower_bound=0)
    flags.DEFINE_string("json_out", "", "Also write the figures here as a JSON dict.")


def _check_output(flag):
    """Refuses an output path in a missing folder before any training."""
    path = getattr(FLAGS, flag)
    folder = os.path.dirname(os.path.abspath(path))
    if path and not os.path.isdir(folder):
        raise UserError(f"--{flag}={path}: the folder {folder} does not exist")


def _write_json(result):
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


def main(argv):
    del argv  # cli.run refuses stray arguments
    for flag in ("json_out", "output_file"):
        _check_output(flag)
    try:
        pairs, test, src_tok, tgt_tok, name = load_data()
        src_ids, tgt_ids = training_ids(pairs, src_tok, tgt_tok)
    except ValueError as error:  # a DataError (a UserError) or a bad size
        raise UserError(str(error)) from None
    src_vocab, tgt_vocab = src_tok.vocab_size, tgt_tok.vocab_size
    print(f"{name}: {len(src_ids):,} training pairs, vocab {src_vocab:,} -> {tgt_vocab:,}",
          flush=True)
    sizes = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, units=FLAGS.units,
                 embedding_dim=FLAGS.embedding_dim, seed=FLAGS.seed)
    if FLAGS.time_budget_minutes:
        quality(src_ids, tgt_ids, test, src_tok, tgt_tok, sizes)
        return
    result = measure(src_ids, tgt_ids, FLAGS.steps, FLAGS.batch_size, FLAGS.warmup_steps,
                     FLAGS.jit_compile, **sizes)
    result["our_parameters"] = our_parameters(src_vocab, tgt_vocab, FLAGS.units,
                                              FLAGS.embedding_dim)
    print(f"keras tutorial NMT: {result['tokens_per_second']:,.0f} target tokens/s over "
          f"{result['steps']} steps ({result['target_tokens']:,} tokens in "
          f"{result['seconds']:.1f} s, {result['cpu_seconds']:.1f} CPU s, "
          f"batch {result['batch_size']}, jit_compile={result['jit_compile']}), "
          f"loss {result['loss']:.3f}, "
          f"{result['parameters']:,} parameters (our RNN: "
          f"{result['our_parameters']:,})")
    _write_json(result)


def quality(src_ids, tgt_ids, test, src_tok, tgt_tok, sizes):
    """Trains for --time_budget_minutes, decodes the test pairs greedily, prints the scores."""
    model, result = train_for(src_ids, tgt_ids, FLAGS.time_budget_minutes, FLAGS.batch_size,
                              **sizes)
    start = time.perf_counter()
    hypotheses = [tgt_tok.decode(ids) for ids in
                  greedy_decode(model, src_tok.encode_batch([s for s, _ in test]))]
    result |= bleu_scores(hypotheses, [t for _, t in test])
    result |= {"decode_seconds": time.perf_counter() - start, "test_pairs": len(test),
               "train_minutes": result["seconds"] / 60}
    print(f"keras tutorial NMT, {result['train_minutes']:.1f} min: {result['steps']:,} steps "
          f"(batch {result['batch_size']}, {result['target_tokens_per_second']:,.0f} target "
          f"tokens/s, loss {result['loss']:.3f}); test ({len(test):,} pairs), greedy: BLEU "
          f"{result['bleu']:.2f} cased, {result['bleu_lowercased']:.2f} lowercased, chrF "
          f"{result['chrf']:.2f}")
    if FLAGS.output_file:
        with open(FLAGS.output_file, "w", encoding="utf-8") as f:
            f.write("".join(h + "\n" for h in hypotheses))
    _write_json(result)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
