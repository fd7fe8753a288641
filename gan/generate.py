r"""Sample a grid of images from a trained GAN's EMA generator.

    python -m gan.generate --model_dir=runs/sagan --num=64 --out=grid.png
    python -m gan.generate --model_dir=runs/cgan --num=16 --label=7 --out=sneakers.png
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import math  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "A model directory written by gan.train.")
    flags.DEFINE_integer("num", 64, "Images to sample.", lower_bound=1)
    flags.DEFINE_integer("label", None, "Class to sample (conditional models; default: "
                         "one row per class, or random).")
    flags.DEFINE_integer("columns", None, "Grid columns (default: about sqrt(num)).")
    flags.DEFINE_integer("seed", 0, "Sampling seed.", lower_bound=0)
    flags.DEFINE_string("out", "grid.png", "Output PNG.")
    flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import numpy as np

    from gan.evaluation import generate_images
    from gan.model_dir import load_ema_generator
    from gan.sample_grid import save_grid

    try:
        generator, config, step = load_ema_generator(FLAGS.model_dir)
        labels = None
        if FLAGS.label is not None:
            if not config.num_classes:
                raise ValueError(f"Expected --label only for a conditional model. Received: "
                                 f"label={FLAGS.label} for an unconditional one")
            if not 0 <= FLAGS.label < config.num_classes:
                raise ValueError(f"Expected --label in [0, {config.num_classes}). Received: "
                                 f"label={FLAGS.label}")
            labels = np.full(FLAGS.num, FLAGS.label)
        elif config.num_classes:
            labels = np.arange(FLAGS.num) * config.num_classes // FLAGS.num
        images, _ = generate_images(generator, FLAGS.num, config.num_classes, config.z_dim,
                                    FLAGS.seed, labels=labels)
        columns = FLAGS.columns or math.ceil(math.sqrt(FLAGS.num))
        path = save_grid(FLAGS.out, images, columns)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"{FLAGS.num} samples of step {step} written to {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
