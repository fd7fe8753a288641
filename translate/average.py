r"""Average a trained model's last checkpoints into a new model directory.

    python -m translate.average --model_dir=D --last=5 --output_dir=D_avg
    python -m translate.evaluate --model_dir=D_avg --src_file=test.src --ref_file=test.ref

The weights of the newest `--last` regular checkpoints of D (`D/checkpoints`; the trainer
keeps `--keep_checkpoints` of them) are averaged in float32, and D_avg receives D's configs
and tokenizers, the averaged weights as its checkpoint, and `average.json` (the steps
averaged). translate.translate, evaluate and export load D_avg as they load D; D is left as
it is. Everything is checked before anything is written: a `--last` larger than the
checkpoints D keeps, or an --output_dir that holds a model already, is a one-line error.
The tools' `--average_last=N` averages in memory instead, without writing a directory.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import sys  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from translate import checkpoint_average  # noqa: E402
from translate import model_dir as nmt_dir  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags of translate.average (a no-op for those that exist already)."""
    common_flags.define_once("string", "model_dir", None,
        "Trained model directory (of translate.train).")
    common_flags.define_once("integer", "last", 5,
        "Average this many of the newest regular checkpoints.",
        lower_bound=1)
    common_flags.define_once("string", "output_dir", None,
        "Where to write the averaged model directory (new or empty; created if missing).")


def main(argv):
    del argv  # cli.run refuses stray arguments
    model_dir = core_dir.require_existing(FLAGS.model_dir, "--model_dir", nmt_dir.MODEL_CONFIG,
                                          nmt_dir.TRAIN_HINT)
    out = checkpoint_average.check_output_dir(FLAGS.output_dir, model_dir)
    checkpoint_average.last_steps(model_dir, FLAGS.last)
    model, steps = checkpoint_average.average_checkpoints(
        model_dir, FLAGS.last, log=lambda line: print(line, file=sys.stderr, flush=True))
    checkpoint_average.write_averaged_dir(model, model_dir, steps, out)
    print(f"averaged steps {', '.join(map(str, steps))} of {model_dir} into {out}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
