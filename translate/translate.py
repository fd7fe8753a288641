r"""Translate sentences with a trained model: stdin to stdout, one sentence a line.

    echo "Sunday, March 21, 1999" | python -m translate.translate --model_dir=D
    python -m translate.translate --model_dir=D --beam_width=5 \
        --input_file=in.txt --output_file=out.txt --plot_dir=plots/
    python -m translate.translate --model_dir=A,B --beam_width=5      # an ensemble
    python -m translate.translate --model_dir=D --sampling_topk=10 --seed=1 # random samples

From stdin, each line is translated and written (flushed) as soon as it arrives, so the tool
works interactively as well as in a pipe; an --input_file is decoded in batches. The model
directory and the output paths are checked before any input is read. With `--plot_dir`, one
attention heatmap PNG per sentence is saved, with the source and target tokens on the axes
(for beam search, the alignments of the chosen hypothesis).

Several comma-separated model directories are decoded as an ensemble (`translate.ensemble`:
the mean of their next-token probabilities, at every step); they must share their
tokenizers. `--average_last=N` decodes each model with the mean weights of its newest N
checkpoints (`translate.average` writes such a model to a directory). The `--sampling*`
flags sample the output instead (`translate.sampling`); sentence i of the input (counting
from 0) is drawn with the key i, so the same --seed gives the same output.
`--replace_unknown` replaces each <unk> of a word-level model's output by the source word
it attends to most.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from translate import decode_config  # noqa: E402
from translate.data_error import DataError  # noqa: E402

FLAGS = flags.FLAGS


def define_model_dir_flag():
    """Defines --model_dir (one directory, or several comma-separated: an ensemble) and
    --average_last."""
    common_flags.define_once("string", "model_dir", None,
        "Trained model directory (of translate.train); several, comma-separated, are "
        "decoded as an ensemble.")
    common_flags.define_once("integer", "average_last", 0,
        "Decode each model with the mean weights of its newest N regular checkpoints "
        "(0: its best checkpoint).",
        lower_bound=0)


def define_flags():
    """Defines the flags of translate.translate (a no-op for those that exist already)."""
    define_model_dir_flag()
    decode_config.define_decode_flags()
    common_flags.define_once("integer", "n_best", 1,
        "Hypotheses printed per sentence, tab-separated (at most --beam_width).",
        lower_bound=1)
    common_flags.define_once("string", "input_file", None,
        "Read sentences from here instead of stdin.")
    common_flags.define_once("string", "output_file", None,
        "Write translations here instead of stdout (its folder is created).")
    common_flags.define_once("string", "plot_dir", None,
        "Save one attention heatmap PNG per sentence here (created if missing).")


def _decode_line(raw, name, number):
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise DataError("bytes that are not UTF-8", path=name, line=number) from None


def read_lines(path):
    """Lines of a UTF-8 file, with DataError naming file and line."""
    try:
        raw = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", path=path) from None
    return [_decode_line(line, path, number)
            for number, line in enumerate(raw.splitlines(), start=1)]


def stdin_lines():
    """The lines of stdin, each as soon as it is complete."""
    for number, raw in enumerate(iter(sys.stdin.buffer.readline, b""), start=1):
        yield _decode_line(raw, "<stdin>", number)


def check_model_dir():
    """The directories of --model_dir (one, or several for an ensemble), each a trained
    model; fails before any input is read.

    Returns:
        A list of paths.
    """
    from translate.model_dir import MODEL_CONFIG, TRAIN_HINT

    names = FLAGS.model_dir.split(",") if FLAGS.model_dir else [FLAGS.model_dir]
    if len(names) > 1 and not all(names):
        raise UserError("Expected --model_dir to list directories separated by single commas. "
                        f"Received: --model_dir={FLAGS.model_dir}")
    return [core_dir.require_existing(name, "--model_dir", MODEL_CONFIG, TRAIN_HINT)
            for name in names]


def check_decoding(model_dirs, skip=()):
    """The `DecodeConfig` of the flags, checked against the models: an ensemble's
    tokenizers, --replace_unknown, --average_last. Fails before any decoding.

    Args:
        model_dirs: The directories of `check_model_dir`.
        skip: DecodeConfig fields the tool does not define.

    Raises:
        UserError: For settings that exclude each other, models that do not share their
            tokenizers, --replace_unknown with a subword model, or an --average_last larger
            than the checkpoints a model keeps.
    """
    from translate import checkpoint_average
    from translate.ensemble import shared_tokenizers

    config = decode_config.decode_config_from_flags(skip)
    _, tgt = shared_tokenizers(model_dirs)
    if "replace_unknown" not in skip and config.replace_unknown and tgt.kind != "word":
        raise UserError(f"--replace_unknown needs a word-level model. Received: {model_dirs[0]} "
                        f"has {tgt.kind} subwords, which have no unknown words to replace")
    if FLAGS.average_last:
        for model_dir in model_dirs:
            checkpoint_average.last_steps(model_dir, FLAGS.average_last, "--average_last")
    return config


def make_translator(model_dirs, config, n_best=1):
    """The `Translator` of the models with the decoding settings, and the steps of their
    checkpoints (one per model)."""
    from translate.ensemble import load_models
    from translate.translator import Translator

    model, src_tok, tgt_tok, steps = load_models(model_dirs, FLAGS.average_last)
    translator = Translator(
        model, src_tok, tgt_tok, beam_width=config.beam_width,
        length_penalty=config.length_penalty, coverage_penalty=config.coverage_penalty,
        n_best=n_best, sampler=config.sampler(), replace_unknown=config.replace_unknown,
    )
    return translator, steps


def _batches(lines, size):
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def main(argv):
    del argv  # cli.run refuses stray arguments
    if FLAGS.n_best > FLAGS.beam_width:
        raise DataError(f"--n_best={FLAGS.n_best} needs --beam_width >= {FLAGS.n_best}")
    model_dirs = check_model_dir()
    config = check_decoding(model_dirs)
    output = core_dir.prepare_output_file(FLAGS.output_file, "--output_file") \
        if FLAGS.output_file else None
    plot_dir = core_dir.prepare_output_dir(FLAGS.plot_dir, "--plot_dir") \
        if FLAGS.plot_dir else None
    lines = read_lines(FLAGS.input_file) if FLAGS.input_file else None
    translator, _ = make_translator(model_dirs, config, FLAGS.n_best)
    # A file is decoded in batches; stdin one line at a time, as the lines come.
    batches = _batches(lines, FLAGS.batch_size) if lines is not None else (
        [line] for line in stdin_lines())
    out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        count = 0
        for batch in batches:
            for hyps in translator.translate(batch, batch_size=FLAGS.batch_size,
                                             first_key=count):
                out.write("\t".join(h.text for h in hyps) + "\n")
                if plot_dir is not None:
                    _plot(plot_dir, count, hyps[0])
                count += 1
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()


def _plot(plot_dir, index, best):
    from attn_core import heatmap

    heatmap.save_attention_png(
        plot_dir / f"sentence_{index:04d}.png", best.alignments,
        x_labels=best.source_pieces, y_labels=best.target_pieces, title=f"sentence {index}",
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
