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

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import sys  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("dataset", "fashion_mnist",
                        "fashion_mnist, mnist, cifar10 or folder:PATH.")
    flags.DEFINE_integer("resolution", 32, "Image side (a power of two).")
    flags.DEFINE_string("classifier_dir", None, "Where to save it (default: the cache).")
    flags.DEFINE_integer("epochs", 5, "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from gan.classifier import default_classifier_dir, train_classifier
    from gan.image_data import load_dataset

    try:
        data = load_dataset(FLAGS.dataset, FLAGS.resolution, FLAGS.seed)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(data.summary())
    directory = FLAGS.classifier_dir or default_classifier_dir(FLAGS.dataset, FLAGS.resolution)
    accuracy = train_classifier(data, directory, epochs=FLAGS.epochs, seed=FLAGS.seed)
    print(f"classifier saved in {directory}; test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
