r"""Demo: an attention GRU encoder-decoder learns to reverse digit sequences.

It trains on the embedded task (no download), then writes into the run
directory: the attention heatmap of one held-out example as a PNG, the
TensorBoard events (losses, accuracy, the same heatmap, the hyperparameters)
and `metrics.json`.

    python -m attn_core.demo                       # runs/reverse__luong__0__<time>/
    python -m attn_core.demo --attention=bahdanau --model_dir=/tmp/reverse

TensorFlow's C++ start-up lines are silenced by `attn_core/__init__.py`, which Python imports
before this module when it runs `python -m attn_core.demo`.
"""

import dataclasses
import pathlib

import numpy as np
from absl import flags

from attn_core import cli, metrics_file, model_dir, precision, reverse_task, seeds, summaries
from attn_core import flags as common_flags

FLAGS = flags.FLAGS


def define_flags():
    common_flags.define_common_flags()
    flags.DEFINE_enum("attention", "luong", ["luong", "bahdanau", "local"],
                      "Attention of the decoder: Luong general, Bahdanau, or local-p.")
    flags.DEFINE_integer("epochs", 6, "Passes over the training set.", lower_bound=1)
    flags.DEFINE_integer("train_size", 6000, "Training sequences.", lower_bound=64)
    flags.DEFINE_integer("units", 64, "GRU size.", lower_bound=1)
    flags.DEFINE_string("model_dir", None, "Run directory (default: a fresh one under "
                        "--runs_root).")
    flags.DEFINE_string("runs_root", "runs", "Where fresh run directories go without "
                        "--model_dir.")


def main(argv):
    del argv  # cli.run refuses stray arguments
    common = common_flags.common_config_from_flags()
    config = reverse_task.ReverseConfig(
        units=FLAGS.units, attention=FLAGS.attention, train_size=FLAGS.train_size,
        epochs=FLAGS.epochs, seed=common.seed,
    )
    path = model_dir.resolve(FLAGS.model_dir, ["reverse", config.attention, config.seed],
                             root=FLAGS.runs_root)
    policy = precision.set_precision_policy(common.precision).name
    print(f"precision: {policy}")
    with model_dir.ModelDir.open(path) as run:
        train_and_report(config, common, policy, run.path)


def train_and_report(config, common, policy, workdir):
    """Trains the reversal model and writes the heatmap, events and metrics into `workdir`."""
    seeds.set_seeds(common.seed)

    result = reverse_task.train(config, verbose=2)

    source, decoder_in, _ = reverse_task.make_data(1, config, seed=config.seed + 2)
    _, alignments = result.align_model.predict([source, decoder_in], verbose=0)
    length = int(np.count_nonzero(source[0]))
    digits = [str(int(t) - 2) for t in source[0, :length]]
    weights = np.asarray(alignments[0, :length, :length], "float32")  # [T, S]
    hparams = dataclasses.asdict(config) | {"precision": policy}
    with summaries.SummaryWriter(workdir) as writer:
        writer.hparams_table(hparams)
        for epoch, loss in enumerate(result.losses):
            writer.scalars(epoch + 1, {"losses/train": loss})
        writer.scalars(config.epochs, {"eval/token_accuracy": result.accuracy})
        png = writer.attention_image("attention/reverse", config.epochs, weights,
                                     x_labels=digits, y_labels=digits[::-1],
                                     title=f"{config.attention} attention, reversing")
    heatmap = pathlib.Path(workdir) / "attention_heatmap.png"
    heatmap.write_bytes(png.read_bytes())
    metrics_file.write_metrics(workdir, {
        "eval/token_accuracy": result.accuracy,
        "losses/train_final": result.losses[-1],
        "attention": config.attention,
        "precision": policy,
    })
    print(f"token accuracy (teacher-forced, 500 held-out sequences): {result.accuracy:.4f}")
    print(f"attention heatmap: {heatmap}")
    print(f"run directory (TensorBoard logdir, metrics.json): {workdir}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
