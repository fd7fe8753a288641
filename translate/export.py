r"""Export a trained model as a SavedModel that maps strings to strings.

    python -m translate.export --model_dir=D --export_dir=E [--beam_width=5]

The `translate` signature takes a string tensor [N] and returns
`{"translation": string [N], "attention": float32 [N, T_tgt, T_src]}` (the
head mean of the last decoder layer; the RNN's attention); the
`translate_all_heads` signature returns the attention of every decoder layer
and head instead, float32 [N, L, H, T_tgt, T_src] ([N, 1, 1, T_tgt, T_src]
for the RNN), from a decoder that keeps them all (slower). Both give the
attention of the chosen hypothesis, source and target EOS included. It
needs only TensorFlow to run (`tf.saved_model.load` or `saved_model_cli
run`): tokenization, vocabulary lookup, decoding and detokenization are all
in the graph. Word-level models only: the in-graph tokenizer is a regular
expression that reproduces Moses' punctuation split for the common cases;
`--check_file` measures how often it agrees with the Python tokenizer.

With several comma-separated model directories, the SavedModel holds every member and
decodes them as an ensemble (`translate.ensemble`); `--average_last=N` exports each model
with the mean weights of its newest N checkpoints.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from translate import decode_config  # noqa: E402
from translate.data_error import DataError  # noqa: E402
from translate.translate import (  # noqa: E402
    check_decoding,
    check_model_dir,
    define_model_dir_flag,
    read_lines,
)

FLAGS = flags.FLAGS

# Punctuation that Moses splits off a word (apostrophes and hyphens inside words stay).
_SPLIT = r"([^\w\s'\-])"
# Joins for detokenization: no space before closing punctuation, none after opening.
_NO_SPACE_BEFORE = r" ([\.,!?;:%\)\]\}»…])"
_NO_SPACE_AFTER = r"([\(\[\{«¿¡]) "


def define_flags():
    """Defines the flags of translate.export (a no-op for those that exist already)."""
    define_model_dir_flag()
    common_flags.define_once("string", "export_dir", None,
        "Where to write the SavedModel (a directory, created if missing).")
    decode_config.define_decode_flags(skip=decode_config.EXPORT_SKIP)
    common_flags.define_once("string", "check_file", None,
        "Sentences on which to compare the in-graph and Python tokenizers.")


def graph_tokenize(sentences):
    """string [N] -> ragged string tokens [N, (S)], Moses-like."""
    import tensorflow as tf

    spaced = tf.strings.regex_replace(sentences, _SPLIT, r" \1 ")
    # A comma or period between digits stays inside the number (1,000 / 3.5).
    spaced = tf.strings.regex_replace(spaced, r"(\d) ([\.,]) (\d)", r"\1\2\3")
    return tf.strings.split(tf.strings.strip(spaced))


def graph_detokenize(tokens):
    """ragged string tokens [N, (T)] -> string [N]."""
    import tensorflow as tf

    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, _NO_SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(text, _NO_SPACE_AFTER, r"\1")


def build_archive(model, src_tok, tgt_tok, beam_width=1, length_penalty=0.0,
                  coverage_penalty=0.0):
    """A `keras.export.ExportArchive` whose `translate` endpoint maps string [N] to
    `{"translation": string [N], "attention": float32 [N, T_tgt, T_src]}` (the head mean),
    and whose `translate_all_heads` endpoint returns every layer's and head's attention,
    float32 [N, L, H, T_tgt, T_src] (L = H = 1 for the RNN).

    `model` may be an `Ensemble`: the archive tracks each member (for an ensemble the
    attention is the first member's)."""
    import keras
    import tensorflow as tf

    from translate.tokenizer import EOS, UNK
    from translate.translator import Translator

    if src_tok.kind != "word" or tgt_tok.kind != "word":
        raise DataError("export supports word-level models only (the in-graph tokenizer)")
    translators = {all_heads: Translator(model, src_tok, tgt_tok, beam_width=beam_width,
                                         length_penalty=length_penalty,
                                         coverage_penalty=coverage_penalty, all_heads=all_heads)
                   for all_heads in (False, True)}
    src_vocab = [src_tok.id_to_piece(i) for i in range(src_tok.vocab_size)]
    src_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(src_vocab), tf.range(len(src_vocab), dtype=tf.int64)
        ),
        default_value=UNK,
    )
    tgt_vocab = tf.constant([tgt_tok.id_to_piece(i) for i in range(tgt_tok.vocab_size)])

    def decode(sentences, all_heads):
        tokens = graph_tokenize(sentences)
        ids = tf.cast(src_table.lookup(tokens), tf.int32)
        eos = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(sentences)[0], 1], EOS))
        source = tf.concat([ids, eos], axis=1).to_tensor(0)
        out = translators[all_heads].decode_batch(source)
        best, lengths = out.tokens[:, 0], out.lengths[:, 0]  # [N, T], [N]
        content = tf.logical_and(best > UNK, tf.sequence_mask(lengths, tf.shape(best)[1]))
        words = tf.ragged.boolean_mask(tf.gather(tgt_vocab, best), content)
        return graph_detokenize(words), out.alignments[:, 0]  # [N], [N, T, *E, S]

    def translate(sentences):
        translation, attention = decode(sentences, all_heads=False)
        return {"translation": translation, "attention": attention}

    def translate_all_heads(sentences):
        translation, attention = decode(sentences, all_heads=True)
        if attention.shape.rank == 3:  # the RNN: one layer of one head
            attention = attention[:, None, None]
        else:  # [N, T, L, H, S] -> [N, L, H, T, S]
            attention = tf.transpose(attention, [0, 2, 3, 1, 4])
        return {"translation": translation, "attention": attention}

    archive = keras.export.ExportArchive()
    for member in getattr(model, "members", (model,)):
        archive.track(member)
    archive.track(src_table)
    for name, endpoint in (("translate", translate), ("translate_all_heads", translate_all_heads)):
        archive.add_endpoint(
            name, endpoint,
            input_signature=[tf.TensorSpec([None], tf.string, name="sentences")],
        )
    return archive


def main(argv):
    del argv  # cli.run refuses stray arguments
    if not FLAGS.export_dir:
        raise UserError("Expected --export_dir (where to write the SavedModel). Received: none")
    model_dirs = check_model_dir()
    config = check_decoding(model_dirs, skip=decode_config.EXPORT_SKIP)
    export_dir = core_dir.prepare_output_dir(FLAGS.export_dir, "--export_dir")
    lines = read_lines(FLAGS.check_file) if FLAGS.check_file else None
    from translate.ensemble import load_models

    model, src_tok, tgt_tok, steps = load_models(model_dirs, FLAGS.average_last)
    archive = build_archive(model, src_tok, tgt_tok, config.beam_width, config.length_penalty,
                            config.coverage_penalty)
    archive.write_out(str(export_dir), verbose=False)
    what = f"step {steps[0]}" if len(steps) == 1 else (
        f"the ensemble of steps {', '.join(map(str, steps))}")
    print(f"exported {what} to {export_dir} (signatures 'translate', "
          "'translate_all_heads')")
    if lines is not None:
        import tensorflow as tf

        graph = graph_tokenize(tf.constant(lines)).to_list()
        same = sum([t.decode() for t in g] == src_tok.pieces(s)
                   for g, s in zip(graph, lines, strict=True))
        print(f"in-graph tokenizer agrees with Moses on {same}/{len(lines)} sentences")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
