"""`FeatureExtractor`: maps images to the features of FID, KID and precision/recall."""

import pathlib

import keras
import numpy as np

from attn_core import precision
from gan.classifier import CLASSIFIER_FILE, FEATURES_LAYER, build_classifier
from gan.data_error import DataError

INCEPTION_SIZE = 299


class FeatureExtractor:
    """Features (and, for a domain classifier, class predictions) of float images.

    Letters: N images, R resolution, C channels, D features, K classes.

    Args:
        features_model: float32 images [N, R, R, C] in [-1, 1] → [N, D].
        name: recorded as `feature_extractor` in `metrics.json`.
        classes_model: images → class probabilities [N, K], or None.
        preprocess: applied to each batch before `features_model` (e.g. resize).
    """

    def __init__(self, features_model, name, classes_model=None, preprocess=None):
        self.features_model = features_model
        self.classes_model = classes_model
        self.name = name
        self.preprocess = preprocess

    def features(self, images, batch_size=500, on_batch=None) -> np.ndarray:
        """float images [N, R, R, C] in [-1, 1] (or uint8) → float64 [N, D]; `on_batch` is
        called with the size of each batch done (progress)."""
        out = []
        for start in range(0, len(images), batch_size):
            batch = _as_unit_range(images[start:start + batch_size])
            if self.preprocess is not None:
                batch = self.preprocess(batch)
            out.append(np.asarray(self.features_model(batch, training=False), np.float64))
            if on_batch is not None:
                on_batch(len(batch))
        return np.concatenate(out)

    def predict_classes(self, images, batch_size=500, on_batch=None) -> np.ndarray:
        """int [N] predicted classes (domain classifiers only)."""
        if self.classes_model is None:
            raise ValueError(f"Expected a classifier extractor. Received: {self.name}")
        out = []
        for start in range(0, len(images), batch_size):
            batch = _as_unit_range(images[start:start + batch_size])
            out.append(np.argmax(np.asarray(self.classes_model(batch, training=False)), -1))
            if on_batch is not None:
                on_batch(len(batch))
        return np.concatenate(out)

    @classmethod
    def from_classifier(cls, model, name="classifier"):
        """Uses the `features` layer of a `gan.classifier.build_classifier` model."""
        features = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
        return cls(features, name, classes_model=model)

    @classmethod
    def load_classifier(cls, directory):
        """Loads `<directory>/classifier.keras`.

        Raises:
            FileNotFoundError: when there is none.
            DataError: when it can't be read.
        """
        path = pathlib.Path(directory) / CLASSIFIER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no classifier at {path}")
        with precision.precision_policy("float32"):
            try:
                model = keras.models.load_model(path, compile=False)
            except (OSError, ValueError, KeyError) as error:
                raise DataError(f"cannot load the classifier ({type(error).__name__}); "
                                "retrain it with gan.train_classifier", path=path) from None
        return cls.from_classifier(model, name=f"classifier:{directory}")

    @classmethod
    def random(cls, resolution, channels, num_classes, seed=0):
        """An untrained classifier's features: for tests and smoke runs only."""
        model = build_classifier(resolution, channels, max(num_classes, 2), seed)
        return cls.from_classifier(model, name="random_classifier")

    @classmethod
    def inception(cls, weights_path):
        """Keras' InceptionV3 pool features (2048-d) from a local weights file; no download.

        Images are resized to 299² and grayscale is repeated to RGB.

        Raises:
            DataError: if the weights file does not exist or does not load.
        """
        path = pathlib.Path(weights_path).expanduser()
        if not path.is_file():
            raise DataError("no such InceptionV3 weights file (.h5, include_top=False or True "
                            "weights from keras.applications)", path=path)
        with precision.precision_policy("float32"):
            include_top = "notop" not in path.name
            try:
                base = keras.applications.InceptionV3(
                    weights=str(path), include_top=include_top, pooling="avg",
                    input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
            except (OSError, ValueError, KeyError) as error:
                raise DataError(f"cannot load InceptionV3 weights ({type(error).__name__}: "
                                f"{error})", path=path) from None
            if include_top:
                base = keras.Model(base.inputs, base.get_layer("avg_pool").output)

        def preprocess(batch):
            batch = keras.ops.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE))
            if batch.shape[-1] == 1:
                batch = keras.ops.repeat(batch, 3, axis=-1)
            return batch  # already in [-1, 1], InceptionV3's input range

        return cls(base, f"inception:{path}", preprocess=preprocess)


def _as_unit_range(images):
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images.astype(np.float32)
