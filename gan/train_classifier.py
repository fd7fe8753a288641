r"""Train (or retrain) the domain classifier of the offline GAN metrics.

    python -m gan.train_classifier --dataset=fashion_mnist
    python -m gan.train_classifier --dataset=folder:photos --resolution=64 --classifier_dir=D

It is saved under `--classifier_dir` (default
`~/.cache/attn_suite/gan_classifier/<dataset>_<R>px`, or `$ATTN_SUITE_CACHE/...`) and its
test-split accuracy is printed and stored in `classifier.json`. `gan.train` trains it
there on first use.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(flag_values=None):
    """Defines gan.train_classifier's flags (on `flag_values`, default the global `FLAGS`)."""
    flag_values = FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("dataset", "fashion_mnist", "fashion_mnist, mnist, cifar10 or "
                        "folder:PATH (one subfolder per class).", flag_values=flag_values)
    flags.DEFINE_integer("resolution", 32, "Image side, a power of two >= 8 (the GAN's).",
                         flag_values=flag_values)
    flags.DEFINE_string("classifier_dir", None, "Where to save it (default: the cache "
                        "gan.train reads, ~/.cache/attn_suite/gan_classifier/<dataset>_<R>px).",
                        flag_values=flag_values)
    flags.DEFINE_integer("epochs", 5, "Training epochs.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0, flag_values=flag_values)


def main(argv):
    del argv  # cli.run refuses stray arguments
    from attn_core.model_dir import prepare_output_dir, resolve
    from gan.classifier import default_classifier_dir, train_classifier
    from gan.image_data import load_dataset

    directory = FLAGS.classifier_dir or default_classifier_dir(FLAGS.dataset, FLAGS.resolution)
    resolve(directory, flag="--classifier_dir")  # checked before the data is loaded
    data = load_dataset(FLAGS.dataset, FLAGS.resolution, FLAGS.seed)
    print(data.summary())
    prepare_output_dir(directory, "--classifier_dir")
    accuracy = train_classifier(data, directory, epochs=FLAGS.epochs, seed=FLAGS.seed)
    print(f"classifier saved in {directory}; test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
