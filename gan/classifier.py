"""The small domain classifier whose penultimate features the offline metrics use."""

import hashlib
import math
import os
import pathlib

import keras
import numpy as np

from attn_core import model_dir as model_dir_lib
from attn_core import precision, progress

CLASSIFIER_FILE = "classifier.keras"
INFO_FILE = "classifier.json"
FEATURES_LAYER = "features"


def cache_root() -> pathlib.Path:
    """`$ATTN_SUITE_CACHE`, or `~/.cache/attn_suite`."""
    return pathlib.Path(os.environ.get("ATTN_SUITE_CACHE", "~/.cache/attn_suite")).expanduser()


def default_classifier_dir(dataset: str, resolution: int) -> pathlib.Path:
    """`<cache_root>/gan_classifier/<dataset>_<R>px`; a folder dataset is keyed by a hash of
    its absolute path."""
    key = dataset
    if dataset.startswith("folder:"):
        path = str(pathlib.Path(dataset[len("folder:"):]).expanduser().resolve())
        key = "folder-" + hashlib.sha1(path.encode()).hexdigest()[:12]
    return cache_root() / "gan_classifier" / f"{key}_{resolution}px"


def build_classifier(resolution: int, channels: int, num_classes: int, seed: int = 0):
    """A float32 CNN: 3 conv stages (32, 64, 128 channels) with batch normalization,
    global average pooling, a 128-unit ReLU layer named `features` (the metric features),
    dropout and a softmax.

    The batch-norm momentum is 0.9 and training ends with a learning rate near 0 (see
    `train_classifier`), so that the moving statistics match the final weights: with a
    slower momentum and a constant learning rate they lag the weights, and the inference-mode
    accuracy falls far below the training-mode one.

    Letters: B batch, R resolution, C channels, K classes.

    Args:
        resolution: R.
        channels: C.
        num_classes: K.
        seed: of the initialisers and dropout.

    Returns:
        A `keras.Model`: float32 images [B, R, R, C] in [-1, 1] → probabilities [B, K].
    """
    with precision.precision_policy("float32"):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((resolution, resolution, channels))
        h = inputs
        for width in (32, 64, 128):
            for _ in range(2 if width < 128 else 1):
                h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
                h = keras.layers.BatchNormalization(momentum=0.9)(h)
                h = keras.layers.ReLU()(h)
            h = keras.layers.MaxPooling2D()(h) if width < 128 else h
        h = keras.layers.GlobalAveragePooling2D()(h)
        h = keras.layers.Dense(128, activation="relu", name=FEATURES_LAYER)(h)
        h = keras.layers.Dropout(0.3)(h)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(h)
        return keras.Model(inputs, outputs, name="domain_classifier")


class _BatchProgress(keras.callbacks.Callback):
    """Reports every training batch of `fit` to an `attn_core.progress.Progress`."""

    def __init__(self, bar):
        super().__init__()
        self.bar, self.done = bar, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        shown = {k: float(v) for k, v in (logs or {}).items() if k in ("loss", "accuracy")}
        self.bar.update(self.done, metrics=shown)


def train_classifier(data, directory, epochs: int = 5, batch_size: int = 128, seed: int = 0,
                     show_progress: bool = True) -> float:
    """Trains the classifier on `data.train_*`, saves it in `directory`, returns test accuracy.

    Adam with a cosine decay from 2e-3 to 2e-5 over the epochs.

    Writes `<directory>/classifier.keras` and `<directory>/classifier.json`
    (`{"test_accuracy", "dataset", "resolution", "epochs"}`).

    Args:
        data: a `gan.image_data.ImageData`.
        directory: where to save (created).
        epochs: passes over the training split.
        batch_size: training batch.
        seed: of initialisation and shuffling.
        show_progress: report every batch (`attn_core.progress`: a bar on a terminal,
            a line every 30 s in a log).

    Returns:
        The test-split accuracy.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = build_classifier(data.resolution, data.channels, data.num_classes, seed)
    with precision.precision_policy("float32"):
        steps = epochs * (len(data.train_images) // batch_size + 1)  # the decay's length
        schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.01)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        x_train = data.train_images.astype(np.float32) / 127.5 - 1.0
        x_test = data.test_images.astype(np.float32) / 127.5 - 1.0
        batches = epochs * math.ceil(len(x_train) / batch_size)
        with progress.phase("classifier", batches, unit="batch",
                            enabled=show_progress) as bar:
            model.fit(x_train, data.train_labels, batch_size=batch_size, epochs=epochs,
                      shuffle=True, verbose=0, callbacks=[_BatchProgress(bar)])
        _, accuracy = model.evaluate(x_test, data.test_labels, batch_size=512, verbose=0)
    tmp = directory / f".{CLASSIFIER_FILE}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, directory / CLASSIFIER_FILE)
    info = {"test_accuracy": float(accuracy), "dataset": data.name,
            "resolution": data.resolution, "epochs": epochs}
    model_dir_lib.write_json(directory / INFO_FILE, info)
    return float(accuracy)


def classifier_info(directory) -> dict | None:
    """The saved `classifier.json`, or None when no classifier is cached there."""
    directory = pathlib.Path(directory)
    if not (directory / CLASSIFIER_FILE).is_file() or not (directory / INFO_FILE).is_file():
        return None
    return model_dir_lib.read_json(directory / INFO_FILE, "classifier info")
