r"""Train a self-attention GAN (SAGAN), then evaluate it offline.

    python -m gan.train --model_dir=runs/sagan --steps=20000          # Fashion-MNIST, 32 px
    python -m gan.train --model_dir=runs/cgan --conditional           # class-conditional
    python -m gan.train --model_dir=runs/sngan --attention=none       # the SNGAN ablation
    python -m gan.train --dataset=folder:photos --resolution=64 --mixed_precision=mixed_bfloat16

A model directory is resumed when it holds a checkpoint (kill and rerun the same command).
It collects sample grids (`samples/`), TensorBoard events and, at the end, `metrics.json`
(FID, KID, precision/recall on the features of a domain classifier, trained on first use
and cached, see `gan.train_classifier`).

Multi-worker training: start the same command on every worker, each with its `TF_CONFIG`,
`--strategy=multi_worker` and the same `--model_dir` on a shared filesystem. The batch
sizes are global; only the chief (worker 0) writes in the model directory, trains the
cached classifier and evaluates; every worker resumes from the chief's checkpoints and,
after training, logs `weights fingerprint: <hex>`, equal on every worker.

    TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]},
                "task": {"type": "worker", "index": 0}}' \
        python -m gan.train --strategy=multi_worker --model_dir=/shared/runs/sagan
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import dataclasses  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import run_dir, strategy  # noqa: E402
from gan import model_dir as model_dir_lib  # noqa: E402
from gan.data_error import DataError  # noqa: E402
from gan.image_data import load_dataset  # noqa: E402
from gan.model_config import ATTENTIONS, ModelConfig  # noqa: E402
from gan.train_config import TrainConfig  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    common_flags.define_common_flags()
    flags.DEFINE_alias("mixed_precision", "precision")
    flags.DEFINE_string("model_dir", None, "Model directory (default: a fresh run directory).")
    flags.DEFINE_string("dataset", "fashion_mnist", "fashion_mnist, mnist, cifar10 or "
                        "folder:PATH (one subfolder per class).")
    model = ModelConfig()
    flags.DEFINE_integer("resolution", model.resolution, "Image side, a power of two.")
    flags.DEFINE_bool("conditional", False, "Class-conditional BN in G, projection D.")
    flags.DEFINE_enum("attention", model.attention, ATTENTIONS,
                      "sagan: self-attention blocks; none: the SNGAN ablation.")
    flags.DEFINE_integer("g_attention_res", model.g_attention_res, "G's attention side.")
    flags.DEFINE_integer("d_attention_res", model.d_attention_res, "D's attention side.")
    flags.DEFINE_integer("g_channels", model.g_channels, "G's width at full resolution.")
    flags.DEFINE_integer("d_channels", model.d_channels, "D's width after its first block.")
    flags.DEFINE_integer("z_dim", model.z_dim, "Latent size.")
    train = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        value = getattr(train, field.name)
        define = flags.DEFINE_integer if isinstance(value, int) else flags.DEFINE_float
        define(field.name, value, f"TrainConfig.{field.name}.")
    flags.DEFINE_alias("minutes", "time_budget_minutes")
    flags.DEFINE_string("fid_extractor", "classifier",
                        "classifier (the cached domain classifier), inception:WEIGHTS_PATH "
                        "(Keras InceptionV3 weights file, no download) or none.")
    flags.DEFINE_string("classifier_dir", None, "Domain classifier directory (default: "
                        "~/.cache/attn_suite/gan_classifier/<dataset>_<R>px).")


def check_extractor_spec(spec):
    """Raises `DataError` unless `--fid_extractor` is classifier, none or inception:PATH."""
    if spec not in ("classifier", "none") and not spec.startswith("inception:"):
        raise DataError("Expected --fid_extractor to be classifier, none or "
                        f"inception:WEIGHTS_PATH. Received: fid_extractor={spec!r}")


def feature_extractor_for(spec, data, log=print):
    """The metric features from `--fid_extractor`; trains the classifier on first use."""
    from gan.classifier import classifier_info, default_classifier_dir, train_classifier
    from gan.feature_extractor import FeatureExtractor

    check_extractor_spec(spec)
    if spec == "none":
        return None
    if spec.startswith("inception:"):
        return FeatureExtractor.inception(spec[len("inception:"):])
    directory = FLAGS.classifier_dir or default_classifier_dir(data.name, data.resolution)
    info = classifier_info(directory)
    if info is None:
        log(f"training the domain classifier of the metrics in {directory} (first use)")
        accuracy = train_classifier(data, directory, verbose=2)
        log(f"classifier test accuracy: {accuracy:.4f}")
    else:
        log(f"domain classifier: {directory} (test accuracy {info['test_accuracy']:.4f})")
    return FeatureExtractor.load_classifier(directory)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:  # TensorFlow's INFO lines (strategy set-up) would
        absl_logging.set_verbosity(absl_logging.WARNING)  # drown a one-line error
    try:
        common = common_flags.common_config_from_flags()
        train_config = TrainConfig(**{f.name: getattr(FLAGS, f.name)
                                      for f in dataclasses.fields(TrainConfig)})
        check_extractor_spec(FLAGS.fid_extractor)
        workdir = FLAGS.model_dir or common.workdir
        if common.strategy == "multi_worker" and not workdir:
            raise ValueError("Expected --model_dir with --strategy=multi_worker (the same "
                             "shared directory on every worker). Received: none")
        # Before any TensorFlow op (resizing runs some): --cpu_devices splits the CPU, and
        # MultiWorkerMirroredStrategy must come first (it also waits for every worker).
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
        chief = strategy.is_chief(dist)
        train_config.check_replicas(dist.num_replicas_in_sync)
        data = load_dataset(FLAGS.dataset, FLAGS.resolution, common.seed)
        print(data.summary())
        if workdir:
            workdir = model_dir_lib.resolve_model_dir(workdir, create=chief)
        else:  # one process: it is the chief
            name = FLAGS.dataset.replace("/", "_").replace(":", "-")
            workdir = run_dir.make_run_dir("runs", ["gan", name, FLAGS.attention, common.seed])
        model_config, resumed = model_dir_lib.load_or_create_config(workdir, ModelConfig(
            resolution=FLAGS.resolution, image_channels=data.channels,
            num_classes=data.num_classes if FLAGS.conditional else 0, z_dim=FLAGS.z_dim,
            g_channels=FLAGS.g_channels, d_channels=FLAGS.d_channels,
            attention=FLAGS.attention, g_attention_res=FLAGS.g_attention_res,
            d_attention_res=FLAGS.d_attention_res), save=chief)
        if resumed and chief:  # other workers may just see the config the chief saved
            print(f"resuming the model of {workdir / 'model_config.json'}")
        if (model_config.resolution, model_config.image_channels) != (data.resolution,
                                                                      data.channels):
            raise DataError(f"Expected data of the saved model's {model_config.resolution} px "
                            f"and {model_config.image_channels} channels. Received: "
                            f"{data.resolution} px, {data.channels} channels")
        if chief:
            model_dir_lib.save_data_info(workdir, data.name, data.class_names)
        # Only the chief evaluates, so only it trains the cached classifier on first use
        # (the other workers wait for it in their first collective op).
        extractor = (feature_extractor_for(FLAGS.fid_extractor, data)
                     if train_config.eval_samples and chief else None)
    except (DataError, ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"model directory: {workdir}")
    from gan.trainer import train_and_evaluate

    train_and_evaluate(data, model_config, train_config, common, workdir, extractor,
                       dist=dist)


if __name__ == "__main__":
    define_flags()
    app.run(main)
