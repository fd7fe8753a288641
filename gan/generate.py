r"""Sample a grid of images from a trained GAN's EMA generator.

    python -m gan.generate --model_dir=runs/sagan --num=64 --out=grid.png
    python -m gan.generate --model_dir=runs/cgan --num=16 --label=7 --out=sneakers.png

The newest intact checkpoint of the model directory is used (a damaged newer one is
skipped with one line).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import math  # noqa: E402

from absl import flags  # noqa: E402

from attn_core.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(flag_values=None):
    """Defines gan.generate's flags (on `flag_values`, default the global `FLAGS`)."""
    flag_values = FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("model_dir", None, "A model directory written by gan.train.",
                        flag_values=flag_values)
    flags.DEFINE_integer("num", 64, "Images to sample.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("label", None, "Class to sample, in [0, classes) (conditional "
                         "models; default: the classes in turn).", flag_values=flag_values)
    flags.DEFINE_integer("columns", None, "Grid columns (default: about sqrt(num)).",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Sampling seed.", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_string("out", "grid.png", "Output PNG (its folder is created).",
                        flag_values=flag_values)
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)


def sample_labels(config, label, num):
    """The labels of the `num` samples (None for an unconditional model).

    Raises:
        UserError: for a `--label` the model does not have.
    """
    import numpy as np

    if label is not None:
        if not config.num_classes:
            raise UserError(f"Expected --label only for a conditional model. Received: "
                            f"label={label} for an unconditional one")
        if not 0 <= label < config.num_classes:
            raise UserError(f"Expected --label in [0, {config.num_classes}). Received: "
                            f"label={label}")
        return np.full(num, label)
    if config.num_classes:
        return np.arange(num) * config.num_classes // num
    return None


def main(argv):
    del argv  # cli.run refuses stray arguments
    from attn_core.model_dir import prepare_output_file
    from gan.evaluation import generate_images
    from gan.model_config import ModelConfig
    from gan.model_dir import load_ema_generator, require_model_dir
    from gan.sample_grid import save_grid

    model_dir = require_model_dir(FLAGS.model_dir)
    labels = sample_labels(ModelConfig.load(model_dir), FLAGS.label, FLAGS.num)
    out = prepare_output_file(FLAGS.out, "--out")
    generator, config, step = load_ema_generator(model_dir)
    images, _ = generate_images(generator, FLAGS.num, config.num_classes, config.z_dim,
                                FLAGS.seed, labels=labels)
    columns = FLAGS.columns or math.ceil(math.sqrt(FLAGS.num))
    path = save_grid(out, images, columns)
    print(f"{FLAGS.num} samples of step {step} written to {path}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
