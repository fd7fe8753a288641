r"""Translate sentences with a trained model: stdin to stdout, one sentence a line.

    echo "Sunday, March 21, 1999" | python -m translate.translate --model_dir=D
    python -m translate.translate --model_dir=D --beam_width=5 \
        --input_file=in.txt --output_file=out.txt --plot_dir=plots/
    python -m translate.translate --model_dir=A,B --beam_width=5      # an ensemble
    python -m translate.translate --model_dir=D --sampling_topk=10 --seed=1 # random samples

    python -m translate.translate --model_dir=D --alignment_format=pharaoh \
        --attention_json=attention.jsonl --attention_heads=all --plot_dir=plots/
    python -m translate.translate --model_dir=D --input_file=in.txt --html=attention.html

From stdin, each line is translated and written (flushed) as soon as it arrives, so the tool
works interactively as well as in a pipe; an --input_file is decoded in batches. The model
directory, --attention_heads and the output paths are checked before any input is read.

Attention, always that of the chosen hypothesis (its own beam's history, not a re-run):

- `--plot_dir`: one heatmap PNG per sentence, source and target tokens on the axes; with
  `--attention_heads=all` a Transformer's is a grid, decoder layers as rows, heads as columns.
- `--alignment_format=pharaoh`: after each translation, a tab and its hard word alignment,
  `i-j` for source word i and target word j (0-based; Moses/fast_align), each target word
  linked to its most attended source word, EOS left out. Words are the word-level tokens
  (a subword model's pieces are mapped to them). With `--n_best`, each hypothesis is
  followed by its own alignment.
- `--attention_json=FILE`: one JSON object per sentence (JSON lines) for the best
  hypothesis: "source", "translation", "source_tokens" and "target_tokens" (the model's
  pieces, EOS included) and "attention", [layers][heads][T_tgt][T_src] for the Transformer,
  [T_tgt][T_src] for the RNN. Its folder must exist (a typo there fails before decoding).
- `--attention_heads`: mean (the head mean of the last decoder layer; the RNN's one
  attention), all (plots: the grid; alignments: the mean) or L:H (layer L, head H, 0-based,
  the indices of the JSON arrays).
- `--html=FILE`: the attention dashboard's view of every sentence (the best hypothesis:
  every decoder layer and head, their mean, the tokens) as one self-contained HTML file
  (data and script inline, no network), written once the input is translated. Its folder
  must exist.

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
    common_flags.define_once("enum", "alignment_format", None,
        "Print each translation's hard word alignment after it, tab-separated: pharaoh "
        "('i-j': source word i, target word j, 0-based; EOS left out).",
        enum_values=["pharaoh"])
    common_flags.define_once("string", "attention_json", None,
        "Write, per sentence, the tokens and the cross-attention ([layers][heads][T_tgt]"
        "[T_src] for the Transformer, [T_tgt][T_src] for the RNN) as JSON lines here (its "
        "folder must exist).")
    common_flags.define_once("string", "html", None,
        "Write the cross-attention of every sentence (every decoder layer and head) as one "
        "self-contained interactive HTML page here (its folder must exist).")
    define_attention_heads_flag()


def define_attention_heads_flag():
    common_flags.define_once("string", "attention_heads", "mean",
        "The attention that plots, alignments and AER use: mean (the head mean of the last "
        "decoder layer; the RNN's attention), all (plots: a grid of layers x heads; "
        "alignments: the mean) or L:H (decoder layer L, head H, 0-based).")


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


def check_attention_heads(model_dir):
    """--attention_heads, parsed and checked against the model of `model_dir` (its config
    only: before any decoding). Returns an `alignment.Heads`."""
    from translate import alignment
    from translate.model_dir import load_model_config

    try:
        heads = alignment.parse_heads(FLAGS.attention_heads)
        return alignment.check_heads(heads, load_model_config(model_dir).attention_dims)
    except ValueError as error:
        raise UserError(f"--attention_heads={FLAGS.attention_heads}: {error}") from None


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


def make_translator(model_dirs, config, n_best=1, all_heads=True):
    """The `Translator` of the models with the decoding settings, and the steps of their
    checkpoints (one per model). `all_heads=False` keeps only the head mean of the attention
    (faster)."""
    from translate.ensemble import load_models
    from translate.translator import Translator

    model, src_tok, tgt_tok, steps = load_models(model_dirs, FLAGS.average_last)
    translator = Translator(
        model, src_tok, tgt_tok, beam_width=config.beam_width,
        length_penalty=config.length_penalty, coverage_penalty=config.coverage_penalty,
        n_best=n_best, sampler=config.sampler(), replace_unknown=config.replace_unknown,
        all_heads=all_heads,
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
    heads = check_attention_heads(model_dirs[0])
    output = core_dir.prepare_output_file(FLAGS.output_file, "--output_file") \
        if FLAGS.output_file else None
    # The one output that must go into an existing folder (the bad input).
    attention_json = core_dir.prepare_output_file(FLAGS.attention_json, "--attention_json",
                                                  create_folder=False) \
        if FLAGS.attention_json else None
    html = core_dir.prepare_output_file(FLAGS.html, "--html", create_folder=False) \
        if FLAGS.html else None
    plot_dir = core_dir.prepare_output_dir(FLAGS.plot_dir, "--plot_dir") \
        if FLAGS.plot_dir else None
    lines = read_lines(FLAGS.input_file) if FLAGS.input_file else None
    translator, steps = make_translator(
        model_dirs, config, FLAGS.n_best,
        all_heads=attention_json is not None or html is not None or heads.kind != "mean")
    # A file is decoded in batches; stdin one line at a time, as the lines come.
    batches = _batches(lines, FLAGS.batch_size) if lines is not None else (
        [line] for line in stdin_lines())
    files = []
    try:
        out = sys.stdout
        if output:
            out = open(output, "w", encoding="utf-8")  # noqa: SIM115
            files.append(out)
        json_out = None
        if attention_json:
            json_out = open(attention_json, "w", encoding="utf-8")  # noqa: SIM115
            files.append(json_out)
        count = 0
        records = []  # --html's, written once the input is translated
        for batch in batches:
            decoded = translator.translate(batch, batch_size=FLAGS.batch_size, first_key=count)
            for source, hyps in zip(batch, decoded, strict=True):
                out.write("\t".join(_fields(translator, hyps, heads)) + "\n")
                if json_out is not None:
                    json_out.write(_attention_record(source, hyps[0]) + "\n")
                if plot_dir is not None:
                    _plot(plot_dir, count, hyps[0], heads)
                if html is not None:
                    records.append(_html_record(count, hyps[0]))
                count += 1
            for f in (out, json_out):
                if f is not None:
                    f.flush()
        if html is not None:
            _write_html(html, records, model_dirs, steps)
    finally:
        for f in files:
            f.close()


def _fields(translator, hyps, heads):
    """The output line's fields: each hypothesis, and its Pharaoh alignment if asked for."""
    from translate import alignment

    fields = []
    for hyp in hyps:
        fields.append(hyp.text)
        if FLAGS.alignment_format == "pharaoh":
            fields.append(alignment.format_pharaoh(translator.word_alignment(hyp, heads)))
    return fields


def _attention_record(source, best):
    """One line of --attention_json."""
    import json

    import numpy as np

    return json.dumps({
        "source": source, "translation": best.text,
        "source_tokens": list(best.source_pieces), "target_tokens": list(best.target_pieces),
        "attention": np.round(best.attention.astype(float), 5).tolist(),
    }, ensure_ascii=False)


def _html_record(index, best):
    """The --html record of sentence `index` (its best hypothesis)."""
    from attn_core import attention_record
    from translate.attention_view import translation_view

    return attention_record.make_record(f"sentence {index}", **translation_view(best))


def _write_html(path, records, model_dirs, steps):
    from attn_core import attention_record

    models = ", ".join(f"{pathlib.Path(d).name} (step {s})"
                       for d, s in zip(model_dirs, steps, strict=True))
    attention_record.write_html(path, records, title=f"translate.translate: {models}")


def _plot(plot_dir, index, best, heads):
    from attn_core import heatmap
    from translate import alignment

    weights = alignment.select_heads(best.attention, heads)
    save = heatmap.save_attention_grid_png if weights.ndim == 4 else heatmap.save_attention_png
    title = f"sentence {index}" + (f" (layer:head {heads})" if heads.kind == "one" else "")
    save(plot_dir / f"sentence_{index:04d}.png", weights, x_labels=best.source_pieces,
         y_labels=best.target_pieces, title=title)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
