r"""gan benchmarks: each row is a real `python -m gan.train` run.

    python -m benchmarks.gan_bench --suite=ablation                # SAGAN vs SNGAN, 20k steps
    python -m benchmarks.gan_bench --suite=ablation --steps=5000 --minutes=60
    python -m benchmarks.gan_bench --suite=ablation --steps=12000 --eval_seeds=1,2,3
    python -m benchmarks.gan_bench --suite=speed                   # float32 vs mixed_bfloat16

`ablation` trains SAGAN and the `--attention=none` ablation with the same step budget and
seed on Fashion-MNIST at 32 px and prints FID, KID, precision, recall and the real-vs-real
floor from their metrics.json, with the ablation/SAGAN FID ratio (> 1: attention helps).
`speed` times short runs without evaluation and prints training images/s per precision.
A run whose directory already holds a metrics.json for the same step budget is read back,
not retrained; an interrupted one resumes from its checkpoint.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import cli  # noqa: E402
from benchmarks.bench_utils import print_table, run_module, write_rows  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("suite", "ablation", ["ablation", "speed"], "Which table.")
flags.DEFINE_string("root", "runs/gan_bench", "Where the model directories go.")
flags.DEFINE_integer("steps", 20000, "G steps per ablation run.", lower_bound=1)
flags.DEFINE_float("minutes", 0.0, "Training-time cap per run (0: none; the step budget "
                   "then binds). Both ablation rows get the same cap.")
flags.DEFINE_integer("speed_steps", 60, "G steps per speed run.", lower_bound=10)
flags.DEFINE_integer("seed", 0, "Seed of every run.")
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset of every run.")
flags.DEFINE_string("json_out", "", "speed: also write the bf16-vs-float32 row as JSON.")
flags.DEFINE_list("extra", [], "Extra flags for every run, e.g. --extra=--g_channels=64.")
flags.DEFINE_list("eval_seeds", [], "ablation: also re-evaluate both EMA generators with these "
                  "sampling seeds (the runs' own evaluation used --seed), to show how far FID "
                  "and KID move with the samples alone.")


def run(name, *args):
    """Runs gan.train; returns its metrics.json as a dict (with the wall time)."""
    return run_module(name, "gan.train", pathlib.Path(FLAGS.root) / name,
                      [f"--dataset={FLAGS.dataset}", f"--seed={FLAGS.seed}", *args, *FLAGS.extra])


def table(rows, columns):
    print_table(rows, columns, "{:.4g}")


def ablation():
    budget = [f"--steps={FLAGS.steps}", f"--minutes={FLAGS.minutes}"]
    rows = []
    results = {}
    for name, attention in (("sagan", "sagan"), ("sngan", "none")):
        m = run(f"ablation_{name}_{FLAGS.steps}", f"--attention={attention}", *budget)
        results[name] = m
        rows.append([name, m["steps"], m["fid"], m["kid"], m["precision"], m["recall"],
                     m["fid_floor"], m["images_per_second"], m["train_minutes"]])
    print(f"\nFashion-MNIST 32 px, {FLAGS.steps} G steps budget, seed {FLAGS.seed}, features: "
          f"{results['sagan']['feature_extractor']}\n")
    table(rows, ["model", "steps", "FID", "KID", "precision", "recall", "FID floor",
                 "img/s", "train min"])
    ratio = results["sngan"]["fid"] / max(results["sagan"]["fid"], 1e-9)
    verdict = "SAGAN beats" if ratio > 1 else "SAGAN does not beat"
    over_floor = results["sagan"]["fid"] / max(results["sagan"]["fid_floor"], 1e-9)
    print(f"\nFID ratio SNGAN/SAGAN: {ratio:.3f} ({verdict} the --attention=none ablation); "
          f"SAGAN FID/floor: {over_floor:.2f}")
    if FLAGS.eval_seeds:
        resample([int(s) for s in FLAGS.eval_seeds], results["sagan"]["eval_samples"])


def resample(seeds, num_samples):
    """FID/KID of both trained EMA generators under other sampling seeds, and their ratio."""
    import numpy as np

    from gan.classifier import default_classifier_dir
    from gan.evaluation import evaluate_generator
    from gan.feature_extractor import FeatureExtractor
    from gan.image_data import load_dataset
    from gan.model_dir import load_ema_generator

    data = load_dataset(FLAGS.dataset, 32, FLAGS.seed)
    extractor = FeatureExtractor.load_classifier(default_classifier_dir(FLAGS.dataset, 32))
    fids, rows = {}, []
    for name in ("sagan", "sngan"):
        generator, config, step = load_ema_generator(
            pathlib.Path(FLAGS.root) / f"ablation_{name}_{FLAGS.steps}")
        for seed in seeds:
            m = evaluate_generator(generator, extractor, data, num_samples, config.z_dim, seed)
            fids.setdefault(name, []).append(m["fid"])
            rows.append([name, step, seed, m["fid"], m["kid"], m["precision"], m["recall"]])
    print(f"\nRe-evaluated with sampling seeds {seeds} ({num_samples} samples each)\n")
    table(rows, ["model", "steps", "sampling seed", "FID", "KID", "precision", "recall"])
    ratios = np.array(fids["sngan"]) / np.array(fids["sagan"])
    print(f"\nFID ratio SNGAN/SAGAN per seed: {', '.join(f'{r:.3f}' for r in ratios)}; "
          f"SAGAN FID {np.mean(fids['sagan']):.3f} ± {np.std(fids['sagan']):.3f}, "
          f"SNGAN {np.mean(fids['sngan']):.3f} ± {np.std(fids['sngan']):.3f}")


def speed():
    rows, speed = [], {}
    for precision in ("float32", "mixed_bfloat16"):
        m = run(f"speed_{precision}_{int(time.time())}", f"--precision={precision}",
                f"--steps={FLAGS.speed_steps}", "--eval_samples=0", "--fid_extractor=none",
                f"--sample_every={FLAGS.speed_steps}", f"--log_every={FLAGS.speed_steps}",
                f"--checkpoint_every={FLAGS.speed_steps}")
        rows.append([precision, m["steps"], m["images_per_second"], m["steps_per_second"],
                     m["wall_minutes"]])
        speed[precision] = m["images_per_second"]
    print(f"\nTraining speed on the CPU ({os.cpu_count()} cores), batch 64, "
          "the first (tracing) step excluded\n")
    table(rows, ["precision", "steps", "images/s", "steps/s", "wall min"])
    write_rows(FLAGS.json_out, [{
        "row": "SAGAN training (32 px, batch 64), mixed_bfloat16 vs float32", "unit": "img/s",
        "ours": speed["mixed_bfloat16"], "anchor": speed["float32"], "anchor_name": "float32"}])


def main(argv):
    del argv  # cli.run refuses stray arguments
    ablation() if FLAGS.suite == "ablation" else speed()


if __name__ == "__main__":
    cli.run(main)
