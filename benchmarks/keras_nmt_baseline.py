r"""The speed anchor of translate: a plain Keras encoder-decoder in the TF tutorial's design.

"Neural machine translation with attention" (tensorflow.org/text/tutorials/nmt_with_attention)
built at the size of our default RNN model (GRU 256, embeddings 128), trained the tutorial's
way: `model.fit` with Adam and the masked cross-entropy on shuffled batches of 64 sentences,
each padded to its longest sentence (no bucketing), float32. The tutorial's extra metrics
(masked accuracy, the loss again) are left out: they are reporting, not training.

    python -m benchmarks.keras_nmt_baseline --train_file=../shared/data/spa-eng/spa.txt \
        --reverse --train_size=20000 --steps=200
    python -m benchmarks.keras_nmt_baseline --steps=50          # built-in en->fr corpus

The corpus, its seeded dev/test hold-out, the length filter and the tokenizers (word level;
SentencePiece for built-in en-de) are those `python -m translate.train` uses with its defaults,
so the vocabularies, and hence the embedding and output layers, have the sizes of our model's.
It prints one line of results (with our default model's parameter count beside the tutorial
model's) and writes --json_out.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import json  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402
from keras import ops  # noqa: E402

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


def padded_batches(src_ids, tgt_ids, batch_size, count, seed=0):
    """`count` training batches made as translate.input_pipeline makes its examples, without
    bucketing: the sentences shuffled anew each pass, cut into full batches of `batch_size`,
    each padded to its own longest sentence.

    Returns:
        A list of (inputs, target, tokens): inputs {"source": int32 [B, S] (src + [EOS]),
        "decoder_in": int32 [B, T] ([BOS] + tgt)}, target int32 [B, T] (tgt + [EOS]), and
        tokens, the number of real (non-padding) target tokens.
    """
    if len(src_ids) < batch_size:
        raise ValueError(f"Expected at least batch_size={batch_size} sentence pairs. "
                         f"Received: {len(src_ids)}")
    rng = np.random.default_rng(seed)
    batches = []
    while len(batches) < count:
        order = rng.permutation(len(src_ids))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            picked = order[start : start + batch_size]
            inputs = {"source": _pad([list(src_ids[i]) + [EOS] for i in picked]),
                      "decoder_in": _pad([[BOS] + list(tgt_ids[i]) for i in picked])}
            target = _pad([list(tgt_ids[i]) + [EOS] for i in picked])
            batches.append((inputs, target, int(np.count_nonzero(target))))
            if len(batches) == count:
                break
    return batches


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
    src_vocab = int(src_vocab or 1 + max(max(s, default=EOS) for s in src_ids))
    tgt_vocab = int(tgt_vocab or 1 + max(max(t, default=EOS) for t in tgt_ids))
    keras.utils.set_random_seed(seed)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        model = build_tutorial_model(src_vocab, tgt_vocab, units, embedding_dim)
    finally:
        keras.config.set_dtype_policy(policy)
    model.compile(optimizer=keras.optimizers.Adam(), loss=masked_loss, jit_compile=jit_compile)

    total = warmup_steps + steps
    batches = padded_batches(src_ids, tgt_ids, batch_size, total, seed)
    spec = tf.TensorSpec([None, None], tf.int32)
    dataset = tf.data.Dataset.from_generator(
        lambda: ((inputs, target) for inputs, target, _ in batches),
        output_signature=({"source": spec, "decoder_in": spec}, spec),
    ).prefetch(2)
    clock = _Clock(warmup_steps, total)
    model.fit(dataset, epochs=1, steps_per_epoch=total, verbose=0, callbacks=[clock],
              shuffle=False)

    (start, start_cpu), (end, end_cpu) = clock.times
    seconds = end - start
    tokens = sum(n for _, _, n in batches[warmup_steps:])
    return {"tokens_per_second": tokens / seconds, "steps": steps, "seconds": seconds,
            "cpu_seconds": end_cpu - start_cpu, "target_tokens": tokens,
            "parameters": model.count_params(), "loss": clock.loss, "batch_size": batch_size,
            "warmup_steps": warmup_steps, "jit_compile": bool(jit_compile)}


def our_parameters(src_vocab, tgt_vocab, units=256, embedding_dim=128):
    """Parameters of our default `translate.train` model (RNN, GRU) for these vocabularies."""
    from translate.model_config import ModelConfig
    from translate.trainer import build_model

    model = build_model(ModelConfig(units=units, embedding_dim=embedding_dim,
                                    src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab))
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    return model.count_params()


def load_ids():
    """The training pairs as token ids, as `translate.train` loads and tokenizes them with its
    defaults (1000 dev and 1000 test pairs held out with seed --seed, word-level tokenizers
    fitted on the whole training split, or SentencePiece for built-in en-de, pairs longer than
    TrainConfig.max_length dropped); for a file, --train_size then draws a seeded sample.

    Returns:
        (src_ids, tgt_ids, src_vocab, tgt_vocab, a description of the data).
    """
    from translate import builtin_corpus, corpus
    from translate.input_pipeline import filter_max_length
    from translate.tokenizer import Tokenizer
    from translate.train_config import TrainConfig

    if FLAGS.train_file:
        data = corpus.load_corpus(FLAGS.train_file, reverse=FLAGS.reverse, dev_size=1000,
                                  test_size=1000, seed=FLAGS.seed)
        src_lang, tgt_lang, kind = "en", "en", "word"
        name = os.path.basename(FLAGS.train_file) + (" reversed" if FLAGS.reverse else "")
    else:
        data = builtin_corpus.builtin_corpus(FLAGS.builtin_pair, FLAGS.train_size or 50000,
                                             1000, 1000, FLAGS.seed)
        src_lang, tgt_lang = FLAGS.builtin_pair.split("-")
        kind = builtin_corpus.recommended_subword(FLAGS.builtin_pair)
        name = f"built-in {FLAGS.builtin_pair}"
    src_tok = Tokenizer.fit([s for s, _ in data.train], src_lang, kind=kind)
    tgt_tok = Tokenizer.fit([t for _, t in data.train], tgt_lang, kind=kind)
    pairs = data.train
    if FLAGS.train_file and FLAGS.train_size and FLAGS.train_size < len(pairs):
        picked = np.random.default_rng(FLAGS.seed).choice(len(pairs), FLAGS.train_size,
                                                          replace=False)
        pairs = [pairs[i] for i in np.sort(picked)]
    src_ids, tgt_ids, _ = filter_max_length(src_tok.encode_batch([s for s, _ in pairs]),
                                            tgt_tok.encode_batch([t for _, t in pairs]),
                                            TrainConfig().max_length)
    about = (f"{name}: {len(src_ids):,} training pairs, vocab {src_tok.vocab_size:,} -> "
             f"{tgt_tok.vocab_size:,}")
    return src_ids, tgt_ids, src_tok.vocab_size, tgt_tok.vocab_size, about


def define_flags():
    flags.DEFINE_string("train_file", None, "TSV corpus (default: the built-in corpus).")
    flags.DEFINE_bool("reverse", False, "Swap source and target of the file.")
    flags.DEFINE_enum("builtin_pair", "en-fr", ["en-fr", "en-de", "en-es"],
                      "Pair of the built-in corpus.")
    flags.DEFINE_integer("train_size", None, "Built-in corpus: training pairs (default 50000, "
                         "as translate.train). File: a seeded sample of the training pairs "
                         "(default all); the vocabulary is still fitted on all.", lower_bound=1)
    flags.DEFINE_integer("steps", 200, "Timed training steps.", lower_bound=1)
    flags.DEFINE_integer("warmup_steps", 5, "Untimed steps first.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 64, "Sentences a batch.", lower_bound=1)
    flags.DEFINE_integer("units", 256, "GRU units.", lower_bound=1)
    flags.DEFINE_integer("embedding_dim", 128, "Embedding size.", lower_bound=1)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
    flags.DEFINE_integer("seed", 0, "Seeds the hold-out, the sample, the weights, the shuffle.",
                         lower_bound=0)
    flags.DEFINE_string("json_out", "", "Also write the figures here as a JSON dict.")


def main(argv):
    del argv  # cli.run refuses stray arguments
    from attn_core.errors import UserError

    try:
        src_ids, tgt_ids, src_vocab, tgt_vocab, about = load_ids()
    except ValueError as error:  # a DataError (a UserError) or a bad size
        raise UserError(str(error)) from None
    print(about, flush=True)
    result = measure(src_ids, tgt_ids, FLAGS.steps, FLAGS.batch_size, FLAGS.warmup_steps,
                     FLAGS.jit_compile, src_vocab=src_vocab, tgt_vocab=tgt_vocab,
                     units=FLAGS.units, embedding_dim=FLAGS.embedding_dim, seed=FLAGS.seed)
    result["our_parameters"] = our_parameters(src_vocab, tgt_vocab, FLAGS.units,
                                              FLAGS.embedding_dim)
    print(f"keras tutorial NMT: {result['tokens_per_second']:,.0f} target tokens/s over "
          f"{result['steps']} steps ({result['target_tokens']:,} tokens in "
          f"{result['seconds']:.1f} s, {result['cpu_seconds']:.1f} CPU s, "
          f"batch {result['batch_size']}, jit_compile={result['jit_compile']}), "
          f"loss {result['loss']:.3f}, "
          f"{result['parameters']:,} parameters (our default model: "
          f"{result['our_parameters']:,})")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
