r"""Show where the generator's self-attention looks: for a few generated samples and several
query pixels, the attention heatmap of each pixel overlaid on the image.

    python -m gan.attention_map --model_dir=runs/sagan --out=att.png
    python -m gan.attention_map --model_dir=runs/sagan --samples=4 --queries=8,8,2,13
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import sys  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "A model directory written by gan.train.")
    flags.DEFINE_integer("samples", 3, "Generated samples (rows).", lower_bound=1)
    flags.DEFINE_list("queries", None, "Query pixels as row,col,row,col,... in the attention "
                      "grid (default: the centre and three others).")
    flags.DEFINE_integer("label", None, "Class of the samples (conditional models).")
    flags.DEFINE_integer("seed", 0, "Sampling seed.", lower_bound=0)
    flags.DEFINE_string("out", "attention.png", "Output PNG.")
    flags.mark_flag_as_required("model_dir")


def parse_queries(values, side):
    """['8', '8', '2', '13'] → [(8, 8), (2, 13)], checked against the grid side."""
    if values is None:
        return None
    try:
        numbers = [int(v) for v in values]
    except ValueError as e:
        raise ValueError(f"Expected integer --queries. Received: queries={values}") from e
    if len(numbers) % 2 or any(not 0 <= n < side for n in numbers):
        raise ValueError(f"Expected --queries as row,col pairs in [0, {side}). Received: "
                         f"queries={','.join(values)}")
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    import pathlib

    import numpy as np

    from attn_core.heatmap import figure_to_png_bytes
    from gan.attention_overlay import plot_attention_overlay
    from gan.model_dir import load_ema_generator

    try:
        generator, config, step = load_ema_generator(FLAGS.model_dir)
        if generator.attention is None:
            raise ValueError("Expected a model with self-attention. Received: a model trained "
                             "with --attention=none")
        queries = parse_queries(FLAGS.queries, config.g_attention_res)
        rng = np.random.default_rng(FLAGS.seed)
        z = rng.standard_normal((FLAGS.samples, config.z_dim)).astype(np.float32)
        labels = None
        if config.num_classes:
            labels = (np.full(FLAGS.samples, FLAGS.label) if FLAGS.label is not None
                      else rng.integers(0, config.num_classes, FLAGS.samples)).astype(np.int32)
        images, scores = generator(z, labels, training=False, return_attention_scores=True)
        figure = plot_attention_overlay(
            images, scores, queries,
            title=f"generator attention at {config.g_attention_res}x{config.g_attention_res},"
                  f" step {step}")
        path = pathlib.Path(FLAGS.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(figure_to_png_bytes(figure))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"attention maps of {FLAGS.samples} samples (step {step}) written to {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
