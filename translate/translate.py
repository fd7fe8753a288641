r"""Translate sentences with a trained model: stdin to stdout, one sentence a line.

    echo "Sunday, March 21, 1999" | python -m translate.translate --model_dir=D
    python -m translate.translate --model_dir=D --beam_width=5 \
        --input_file=in.txt --output_file=out.txt --plot_dir=plots/

With `--plot_dir`, one attention heatmap PNG per sentence is saved, with the
source and target tokens on the axes (for beam search, the alignments of the
chosen hypothesis).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from translate.data_error import DataError  # noqa: E402

FLAGS = flags.FLAGS


def define_decoding_flags():
    """Flags shared by translate.translate and translate.evaluate."""
    flags.DEFINE_string("model_dir", None, "Trained model directory.", required=True)
    flags.DEFINE_integer("beam_width", 1, "Beam width (1: greedy).", lower_bound=1)
    flags.DEFINE_float("length_penalty", 0.0, "GNMT length penalty α.", lower_bound=0.0)
    flags.DEFINE_float("coverage_penalty", 0.0, "GNMT coverage penalty β.", lower_bound=0.0)
    flags.DEFINE_integer("batch_size", 64, "Sentences decoded together.", lower_bound=1)


def define_flags():
    define_decoding_flags()
    flags.DEFINE_integer("n_best", 1, "Hypotheses printed per sentence (tab-separated).",
                         lower_bound=1)
    flags.DEFINE_string("input_file", None, "Read sentences from here instead of stdin.")
    flags.DEFINE_string("output_file", None, "Write translations here instead of stdout.")
    flags.DEFINE_string("plot_dir", None, "Save one attention heatmap PNG per sentence here.")


def read_lines(path):
    """Lines of a UTF-8 file (or stdin for None), with DataError naming file and line."""
    name = path or "<stdin>"
    try:
        raw = pathlib.Path(path).read_bytes() if path else sys.stdin.buffer.read()
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", path=name) from None
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(line.decode("utf-8").strip())
        except UnicodeDecodeError:
            raise DataError("bytes that are not UTF-8", path=name, line=number) from None
    return lines


def make_translator(n_best=1):
    from translate.model_dir import load_trained
    from translate.translator import Translator

    model, src_tok, tgt_tok, step = load_trained(FLAGS.model_dir)
    translator = Translator(
        model, src_tok, tgt_tok, beam_width=FLAGS.beam_width,
        length_penalty=FLAGS.length_penalty, coverage_penalty=FLAGS.coverage_penalty,
        n_best=n_best,
    )
    return translator, step


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if FLAGS.n_best > FLAGS.beam_width:
            raise DataError(f"--n_best={FLAGS.n_best} needs --beam_width >= {FLAGS.n_best}")
        lines = read_lines(FLAGS.input_file)
        translator, _ = make_translator(FLAGS.n_best)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    results = translator.translate(lines, batch_size=FLAGS.batch_size) if lines else []
    text = "".join("\t".join(h.text for h in hyps) + "\n" for hyps in results)
    if FLAGS.output_file:
        pathlib.Path(FLAGS.output_file).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if FLAGS.plot_dir:
        from attn_core import heatmap

        plot_dir = pathlib.Path(FLAGS.plot_dir)
        plot_dir.mkdir(parents=True, exist_ok=True)
        for i, hyps in enumerate(results):
            best = hyps[0]
            heatmap.save_attention_png(
                plot_dir / f"sentence_{i:04d}.png", best.alignments,
                x_labels=best.source_pieces, y_labels=best.target_pieces,
                title=f"sentence {i}",
            )


if __name__ == "__main__":
    define_flags()
    app.run(main)
