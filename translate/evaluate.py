r"""Score a trained model on a test set: BLEU and chrF with sacrebleu.

    python -m translate.evaluate --model_dir=D --src_file=test.src --ref_file=test.ref \
        [--beam_width=5] [--output_json=scores.json]

Prints the scores and writes them as JSON (default: D/evaluation.json).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from translate.data_error import DataError  # noqa: E402
from translate.translate import define_decoding_flags, make_translator, read_lines  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    define_decoding_flags()
    flags.DEFINE_string("src_file", None, "Source sentences, one a line.", required=True)
    flags.DEFINE_string("ref_file", None, "Reference translations, one a line.", required=True)
    flags.DEFINE_string("output_json", None, "Where to write the scores (default: model_dir).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        sources, references = read_lines(FLAGS.src_file), read_lines(FLAGS.ref_file)
        if len(sources) != len(references):
            raise DataError(
                f"{FLAGS.src_file} has {len(sources)} lines but {FLAGS.ref_file} has "
                f"{len(references)}"
            )
        if not sources:
            raise DataError("no sentences to evaluate", path=FLAGS.src_file)
        translator, step = make_translator()
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    from translate.trainer import corpus_bleu

    hypotheses = [hyps[0].text for hyps in translator.translate(sources, FLAGS.batch_size)]
    bleu, chrf = corpus_bleu(hypotheses, references)
    scores = {"bleu": bleu, "chrf": chrf, "sentences": len(sources), "step": step,
              "beam_width": FLAGS.beam_width, "length_penalty": FLAGS.length_penalty}
    out = pathlib.Path(FLAGS.output_json or pathlib.Path(FLAGS.model_dir) / "evaluation.json")
    out.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"BLEU {bleu:.2f}  chrF {chrf:.2f}  ({len(sources)} sentences, step {step})")


if __name__ == "__main__":
    define_flags()
    app.run(main)
