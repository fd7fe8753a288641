r"""Score a trained model on a test set: BLEU and chrF with sacrebleu.

    python -m translate.evaluate --model_dir=D --src_file=test.src --ref_file=test.ref \
        [--beam_width=5] [--output_json=scores.json]

Prints the scores and writes them as JSON (default: D/evaluation.json). Every input and
output path is checked before the decoding starts, so a mistake costs no decoding time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import json  # noqa: E402
import pathlib  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import checkpoint, progress  # noqa: E402
from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from translate import decode_config  # noqa: E402
from translate.data_error import DataError  # noqa: E402
from translate.translate import (  # noqa: E402
    check_model_dir,
    define_model_dir_flag,
    make_translator,
    read_lines,
)

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags of translate.evaluate (a no-op for those that exist already)."""
    define_model_dir_flag()
    decode_config.define_decode_flags()
    common_flags.define_once("string", "src_file", None,
        "Source sentences, one a line.")
    common_flags.define_once("string", "ref_file", None,
        "Reference translations, one a line.")
    common_flags.define_once("string", "output_json", None,
        "Where to write the scores (default: <model_dir>/evaluation.json; its folder is created).")


def main(argv):
    del argv  # cli.run refuses stray arguments
    for name in ("src_file", "ref_file"):
        if not FLAGS[name].value:
            raise UserError(f"Expected --{name} (a file, one sentence a line). Received: none")
    model_dir = check_model_dir()
    out = core_dir.prepare_output_file(FLAGS.output_json or model_dir / "evaluation.json",
                                       "--output_json")
    sources, references = read_lines(FLAGS.src_file), read_lines(FLAGS.ref_file)
    if len(sources) != len(references):
        raise DataError(f"{FLAGS.src_file} has {len(sources)} lines but {FLAGS.ref_file} has "
                        f"{len(references)}")
    if not sources:
        raise DataError("no sentences to evaluate", path=FLAGS.src_file)
    translator, step = make_translator()
    from translate.trainer import corpus_bleu

    with progress.phase("decoding", len(sources), unit="sentence",
                        delay=progress.SHORT_PHASE_SECONDS) as phase:
        hypotheses = [hyps[0].text for hyps in translator.translate(
            sources, FLAGS.batch_size, progress=phase.update)]
    bleu, chrf = corpus_bleu(hypotheses, references)
    scores = {"bleu": bleu, "chrf": chrf, "sentences": len(sources), "step": step,
              "beam_width": FLAGS.beam_width, "length_penalty": FLAGS.length_penalty,
              "coverage_penalty": FLAGS.coverage_penalty}
    checkpoint.atomic_write_text(pathlib.Path(out), json.dumps(scores, indent=2, sort_keys=True)
                                 + "\n")
    print(f"BLEU {bleu:.2f}  chrF {chrf:.2f}  ({len(sources)} sentences, step {step})")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
