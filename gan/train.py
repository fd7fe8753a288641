r"""Train a self-attention GAN (SAGAN), then evaluate it offline.

    python -m gan.train --model_dir=runs/sagan --steps=20000          # Fashion-MNIST, 32 px
    python -m gan.train --model_dir=runs/cgan --conditional           # class-conditional
    python -m gan.train --model_dir=runs/sngan --attention=none       # the SNGAN ablation
    python -m gan.train --dataset=folder:photos --resolution=64 --precision=mixed_bfloat16

A model directory is resumed when it holds a model: run the same command again (after a
kill, or Ctrl-C, which saves a checkpoint). The saved model settings win: a model flag
given explicitly with another value is an error, while the schedule (--steps, --minutes,
--g_lr, --d_lr, --eval_samples and the cadences) may change. The directory collects sample
grids (`samples/`), TensorBoard events and, at the end, `metrics.json` (FID, KID,
precision/recall on the features of a domain classifier, trained on first use and cached,
see `gan.train_classifier`).

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

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import dataclasses  # noqa: E402
import pathlib  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as model_dir_lib  # noqa: E402
from attn_core import precision, strategy  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from gan import model_dir as gan_dir  # noqa: E402
from gan.data_error import DataError  # noqa: E402
from gan.model_config import ATTENTIONS, ModelConfig  # noqa: E402
from gan.train_config import SCHEDULE_FIELDS, TrainConfig  # noqa: E402

FLAGS = flags.FLAGS
# ModelConfig fields that come from the data, not from a flag of their own.
_FROM_DATA = ("image_channels", "num_classes")


def define_flags(flag_values=None):
    """Defines gan.train's flags (on `flag_values`, default the global `FLAGS`)."""
    flag_values = FLAGS if flag_values is None else flag_values
    common_flags.define_common_flags(flag_values)
    flags.DEFINE_string("model_dir", None, "The model directory: resumed when it holds a "
                        "model (default: a fresh runs/gan__<dataset>__<attention>__<seed>__"
                        "<UTC time>).", flag_values=flag_values)
    flags.DEFINE_string("dataset", "fashion_mnist", "fashion_mnist (offline, Debian's "
                        "dataset-fashion-mnist), mnist, cifar10 (downloaded by Keras) or "
                        "folder:PATH (one subfolder per class).", flag_values=flag_values)
    flags.DEFINE_bool("conditional", False, "Class-conditional model: class-conditional "
                      "batch norm in G and a projection discriminator.",
                      flag_values=flag_values)
    common_flags.define_config_flags(ModelConfig, flag_values, skip=_FROM_DATA,
                                     enums={"attention": ATTENTIONS})
    common_flags.define_config_flags(TrainConfig, flag_values)
    flags.DEFINE_alias("minutes", "time_budget_minutes", flag_values=flag_values)
    flags.DEFINE_string("fid_extractor", "classifier",
                        "Features of the final metrics: classifier (the cached domain "
                        "classifier), inception:WEIGHTS_PATH (Keras InceptionV3 weights "
                        "file, no download) or none.", flag_values=flag_values)
    flags.DEFINE_string("classifier_dir", None, "Domain classifier directory (default: "
                        "~/.cache/attn_suite/gan_classifier/<dataset>_<R>px); trained there "
                        "on first use.", flag_values=flag_values)


def check_extractor_spec(spec):
    """Raises `DataError` unless `--fid_extractor` is classifier, none or inception:PATH."""
    if spec not in ("classifier", "none") and not spec.startswith("inception:"):
        raise DataError("Expected --fid_extractor to be classifier, none or "
                        f"inception:WEIGHTS_PATH. Received: fid_extractor={spec!r}")


def _check_extractor_files(spec, classifier_dir):
    """Checks the paths of the metric features before anything is written."""
    if spec.startswith("inception:"):
        path = pathlib.Path(spec[len("inception:"):]).expanduser()
        if not path.is_file():
            raise DataError("no such InceptionV3 weights file (.h5, include_top=False or "
                            "True weights from keras.applications)", path=path)
    if classifier_dir:
        model_dir_lib.resolve(classifier_dir, flag="--classifier_dir")


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
        model_dir_lib.prepare_output_dir(directory, "--classifier_dir")
        log(f"training the domain classifier of the metrics in {directory} (first use)")
        accuracy = train_classifier(data, directory)
        log(f"classifier test accuracy: {accuracy:.4f}")
    else:
        log(f"domain classifier: {directory} (test accuracy {info['test_accuracy']:.4f})")
    return FeatureExtractor.load_classifier(directory)


def _given_settings():
    """The model and train settings of the command line, flat, by flag name."""
    model = {name: FLAGS[name].value for name in gan_dir.MODEL_FLAGS}
    train = {f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig)}
    return model | train | {"seed": FLAGS.seed}


def _default_run_name(dataset, attention, seed):
    """The parts of a fresh run directory's name: the data really used, the model, the seed."""
    if dataset.startswith("folder:"):
        folder = pathlib.Path(dataset[len("folder:"):]).expanduser().resolve()
        dataset = f"folder-{folder.name or 'root'}"
    return ["gan", dataset, attention, seed]


def _settings(path, log):
    """The run's flat settings: the command line's, or on resume the saved ones with the
    schedule changes the command line makes (read only).

    Raises:
        UserError: when an explicit model flag differs from the saved model.
    """
    saved = gan_dir.saved_settings(path) if path is not None else None
    given = _given_settings()
    if saved is not None:  # a directory of an older gan.train lacks the train settings
        saved = {name: value for name, value in given.items()
                 if name not in gan_dir.MODEL_FLAGS} | saved
    return model_dir_lib.reconcile_config(
        saved, given, common_flags.explicit_flags(FLAGS), may_change=(*SCHEDULE_FIELDS, "seed"),
        where=f"--model_dir={path}", log=log)


def _model_config(settings, data, saved):
    """The `ModelConfig` of `settings` on `data`; on resume, it must be the saved one."""
    values = {name: settings[name] for name in gan_dir.MODEL_FLAGS
              if name not in ("dataset", "conditional")}
    config = ModelConfig(**values, image_channels=data.channels,
                         num_classes=data.num_classes if settings["conditional"] else 0)
    if saved is not None and saved != config:
        raise DataError(
            f"Expected data like the saved model's: {saved.resolution} px, "
            f"{saved.image_channels} channel(s)"
            + (f", {saved.num_classes} classes" if saved.num_classes else "")
            + f". Received: {data.name} at {data.resolution} px, {data.channels} channel(s), "
            f"{data.num_classes} classes")
    return config


def _check_evaluation(train_config, data):
    """Precision/recall (k=3 neighbours) need 4 images a side: checked before training."""
    if train_config.eval_samples and min(train_config.eval_samples,
                                         len(data.test_images)) < 4:
        raise DataError(f"Expected at least 4 test images and --eval_samples >= 4 for the "
                        f"final metrics. Received: {len(data.test_images)} test images in "
                        f"{data.name}, eval_samples={train_config.eval_samples} (use "
                        "--eval_samples=0 to skip them)")


def _make_strategy(common):
    try:
        return strategy.make_strategy(common.strategy, common.cpu_devices)
    except (ValueError, RuntimeError) as error:
        raise UserError(str(error)) from None


def _check_common_flags(common):
    if common.jit_compile and common.strategy != "default":
        raise UserError("Expected --jit_compile only with --strategy=default (XLA compiles "
                        "each step for one device). Received: --strategy="
                        f"{common.strategy}")
    if common.strategy == "multi_worker" and not FLAGS.model_dir:
        raise UserError("Expected --model_dir with --strategy=multi_worker (the same shared "
                        "directory on every worker). Received: none")


def _resolve_run():
    """(The model directory, not created, and the run's settings), read only."""
    if FLAGS.model_dir is not None:
        path = model_dir_lib.resolve(FLAGS.model_dir)
        return path, _settings(path, print)
    settings = _settings(None, print)
    return model_dir_lib.resolve(None, _default_run_name(
        settings["dataset"], settings["attention"], settings["seed"])), settings


def _train(path, dist, data, model_config, train_config, common, policy):
    """Opens (creates and locks) the model directory, saves the configs and trains."""
    from gan.trainer import train_and_evaluate

    chief = strategy.is_chief(dist)
    with model_dir_lib.ModelDir.open(path, chief=chief):
        if chief:
            gan_dir.save_run_config(path, model_config, data, {
                "train_config": dataclasses.asdict(train_config), "seed": common.seed,
                "precision": common.precision, "precision_policy": policy,
                "strategy": common.strategy, "jit_compile": common.jit_compile,
                "replicas": dist.num_replicas_in_sync, "fid_extractor": FLAGS.fid_extractor})
        print(f"model directory: {path}")
        # Only the chief evaluates, so only it trains the cached classifier on first use
        # (the other workers wait for it in their first collective op).
        extractor = (feature_extractor_for(FLAGS.fid_extractor, data)
                     if train_config.eval_samples and chief else None)
        train_and_evaluate(data, model_config, train_config, common, path, extractor,
                           dist=dist)


def main(argv):
    """Validates every input, then trains: nothing is written before the last check."""
    del argv  # cli.run refuses stray arguments
    from gan.image_data import load_dataset

    common = common_flags.common_config_from_flags(FLAGS)
    check_extractor_spec(FLAGS.fid_extractor)
    _check_common_flags(common)
    path, settings = _resolve_run()
    common = dataclasses.replace(common, seed=settings["seed"])
    train_config = TrainConfig(**{f.name: settings[f.name]
                                  for f in dataclasses.fields(TrainConfig)})
    # Before any TensorFlow op (resizing runs some): --cpu_devices splits the CPU, and
    # MultiWorkerMirroredStrategy must come first (it also waits for every worker).
    dist = _make_strategy(common)
    policy = precision.resolve_precision(common.precision)
    print(f"precision: {policy}" + (" (auto)" if common.precision == "auto" else ""))
    train_config.check_replicas(dist.num_replicas_in_sync)
    data = load_dataset(settings["dataset"], settings["resolution"], common.seed)
    print(data.summary())
    saved_config = ModelConfig.load(path) if (path / "model_config.json").is_file() else None
    if saved_config is not None:
        print(f"resuming the model of {path / 'model_config.json'}")
    model_config = _model_config(settings, data, saved_config)
    _check_extractor_files(FLAGS.fid_extractor, FLAGS.classifier_dir)
    _check_evaluation(train_config, data)
    _train(path, dist, data, model_config, train_config, common, policy)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
