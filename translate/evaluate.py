r"""Score a trained model on a test set: BLEU and chrF with sacrebleu.

    python -m translate.evaluate --model_dir=D --src_file=test.src --ref_file=test.ref \
        [--beam_width=5] [--output_json=scores.json]
    python -m translate.evaluate --model_dir=A,B --src_file=test.src --ref_file=test.ref

Prints the scores and writes them as JSON (default: D/evaluation.json; for an ensemble
A,B: A/ensemble_evaluation.json). Every input and output path, and every decoding setting,
is checked before the decoding starts, so a mistake costs no decoding time. The decoding
flags (ensembles, --average_last, sampling, --replace_unknown) are those of
translate.translate.
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
    check_decoding,
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
        "Where to write the scores (default: <model_dir>/evaluation.json, or "
        "<first model_dir>/ensemble_evaluation.json; its folder is created).")


def main(argv):
    del argv  # cli.run refuses stray arguments
    for name in ("src_file", "ref_file"):
        if not FLAGS[name].value:
            raise UserError(f"Expected --{name} (a file, one sentence a line). Received: none")
    model_dirs = check_model_dir()
    config = check_decoding(model_dirs)
    default_name = "evaluation.json" if len(model_dirs) == 1 else "ensemble_evaluation.json"
    out = core_dir.prepare_output_file(FLAGS.output_json or model_dirs[0] / default_name,
                                       "--output_json")
    sources, references = read_lines(FLAGS.src_file), read_lines(FLAGS.ref_file)
    if len(sources) != len(references):
        raise DataError(f"{FLAGS.src_file} has {len(sources)} lines but {FLAGS.ref_file} has "
                        f"{len(references)}")
    if not sources:
        raise DataError("no sentences to evaluate", path=FLAGS.src_file)
    translator, steps = make_translator(model_dirs, config)
    from translate.trainer import corpus_bleu

    with progress.phase("decoding", len(sources), unit="sentence",
                        delay=progress.SHORT_PHASE_SECONDS) as phase:
        hypotheses = [hyps[0].text for hyps in translator.translate(
            sources, FLAGS.batch_size, progress=phase.update)]
    bleu, chrf = corpus_bleu(hypotheses, references)
    scores = {"bleu": bleu, "chrf": chrf, "sentences": len(sources), "step": steps[0],
              "beam_width": config.beam_width, "length_penalty": config.length_penalty,
              "coverage_penalty": config.coverage_penalty}
    if len(model_dirs) > 1:
        scores |= {"model_dirs": [str(d) for d in model_dirs], "steps": steps}
    if FLAGS.average_last:
        scores["average_last"] = FLAGS.average_last
    if config.samples:
        scores |= {name: getattr(config, name) for name in decode_config.SAMPLING_FIELDS}
    if config.replace_unknown:
        scores["replace_unknown"] = True
    checkpoint.atomic_write_text(pathlib.Path(out), json.dumps(scores, indent=2, sort_keys=True)
                                 + "\n")
    where = f"step {steps[0]}" if len(steps) == 1 else (
        f"ensemble of steps {', '.join(map(str, steps))}")
    print(f"BLEU {bleu:.2f}  chrF {chrf:.2f}  ({len(sources)} sentences, {where})")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
