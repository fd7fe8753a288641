r"""Show where the generator's self-attention looks: for a few generated samples and several
query pixels, the attention heatmap of each pixel overlaid on the image.

    python -m gan.attention_map --model_dir=runs/sagan --out=att.png
    python -m gan.attention_map --model_dir=runs/sagan --samples=4 --queries=8,8,2,13
    python -m gan.attention_map --model_dir=runs/sagan --html=attention.html

`--html` writes each sample's whole attention map as one self-contained interactive page,
the view of TensorBoard's Attention tab (data and script inline, no network): clicking a
pixel of the image lays that position's attention over it. Its folder must exist; with
`--html`, the PNG is written only when `--out` is given.

The newest intact checkpoint of the model directory is used (a damaged newer one is
skipped with one line).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

from absl import flags  # noqa: E402

from attn_core.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(flag_values=None):
    """Defines gan.attention_map's flags (on `flag_values`, default the global `FLAGS`)."""
    flag_values = FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("model_dir", None, "A model directory written by gan.train (with "
                        "--attention=sagan).", flag_values=flag_values)
    flags.DEFINE_integer("samples", 3, "Generated samples (rows).", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_list("queries", None, "Query pixels as row,col,row,col,... in the attention "
                      "grid (default: the centre and three others).", flag_values=flag_values)
    flags.DEFINE_integer("label", None, "Class of the samples (conditional models; default: "
                         "random classes).", flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Sampling seed.", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_string("out", "attention.png", "Output PNG (its folder is created; with "
                        "--html, written only when given).", flag_values=flag_values)
    flags.DEFINE_string("html", None, "Write every sample's attention map as one "
                        "self-contained interactive HTML page here (its folder must exist).",
                        flag_values=flag_values)
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)


def parse_queries(values, side):
    """['8', '8', '2', '13'] → [(8, 8), (2, 13)], checked against the grid side.

    Raises:
        UserError: for non-integers, an odd count or a pixel outside the grid.
    """
    if values is None:
        return None
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise UserError(f"Expected integer --queries. Received: queries={','.join(values)}"
                        ) from None
    if len(numbers) % 2 or any(not 0 <= n < side for n in numbers):
        raise UserError(f"Expected --queries as row,col pairs in [0, {side}). Received: "
                        f"queries={','.join(values)}")
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def check_model(config, label):
    """Raises `UserError` for a model without attention or a `--label` it does not have."""
    if config.attention == "none":
        raise UserError("Expected a model with self-attention. Received: a model trained "
                        "with --attention=none")
    if label is not None and not 0 <= label < config.num_classes:
        raise UserError(f"Expected --label in [0, {config.num_classes}) (a conditional "
                        f"model's classes). Received: label={label}")


def main(argv):
    del argv  # cli.run refuses stray arguments
    import numpy as np

    from attn_core.heatmap import figure_to_png_bytes
    from attn_core.model_dir import prepare_output_file
    from gan.attention_overlay import plot_attention_overlay
    from gan.model_config import ModelConfig
    from gan.model_dir import load_ema_generator, require_model_dir

    model_dir = require_model_dir(FLAGS.model_dir)
    config = ModelConfig.load(model_dir)
    check_model(config, FLAGS.label)
    queries = parse_queries(FLAGS.queries, config.g_attention_res)
    html = prepare_output_file(FLAGS.html, "--html", create_folder=False) if FLAGS.html else None
    path = (prepare_output_file(FLAGS.out, "--out")
            if html is None or FLAGS["out"].present else None)
    generator, config, step = load_ema_generator(model_dir)
    rng = np.random.default_rng(FLAGS.seed)
    z = rng.standard_normal((FLAGS.samples, config.z_dim)).astype(np.float32)
    labels = None
    if config.num_classes:
        labels = (np.full(FLAGS.samples, FLAGS.label) if FLAGS.label is not None
                  else rng.integers(0, config.num_classes, FLAGS.samples)).astype(np.int32)
    images, scores = generator(z, labels, training=False, return_attention_scores=True)
    title = (f"generator attention at {config.g_attention_res}x{config.g_attention_res},"
             f" step {step}")
    if path is not None:
        figure = plot_attention_overlay(images, scores, queries, title=title)
        path.write_bytes(figure_to_png_bytes(figure))
        print(f"attention maps of {FLAGS.samples} samples (step {step}) written to {path}")
    if html is not None:
        from attn_core import attention_record
        from gan.attention_view import generator_view

        attention_record.write_html(html, [
            attention_record.make_record(f"sample {i}", **generator_view(image, attention))
            for i, (image, attention) in enumerate(zip(np.asarray(images), np.asarray(scores),
                                                       strict=True))], title=title)
        print(f"attention page of {FLAGS.samples} samples (step {step}) written to {html}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
