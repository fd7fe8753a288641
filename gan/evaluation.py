"""The offline evaluation of a generator: FID, KID, precision/recall and the real floor."""

import numpy as np

from attn_core import progress
from gan.fid import fid_from_features
from gan.kid import kernel_inception_distance
from gan.precision_recall import precision_recall


def generate_images(generator, num, num_classes, z_dim, seed, batch_size=250,
                    labels=None, on_batch=None) -> tuple[np.ndarray, np.ndarray]:
    """Samples `num` float32 images [N, R, R, C] in [-1, 1] from `generator` (eval mode).

    Args:
        generator: a built `gan.generator.Generator` (the EMA one).
        num: N.
        num_classes: 0 for unconditional; else labels are uniform (or `labels`).
        z_dim: latent size.
        seed: of z and the labels.
        batch_size: per generator call.
        labels: int [N] to use instead of random ones.
        on_batch: called with the size of each batch generated (progress).

    Returns:
        (images [N, R, R, C], labels int32 [N]).
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num, z_dim)).astype(np.float32)
    if labels is None:
        labels = rng.integers(0, max(num_classes, 1), num)
    labels = np.asarray(labels, np.int32)
    out = []
    for start in range(0, num, batch_size):
        y = labels[start:start + batch_size] if num_classes else None
        out.append(np.asarray(generator(z[start:start + batch_size], y, training=False)))
        if on_batch is not None:
            on_batch(len(out[-1]))
    return np.concatenate(out).astype(np.float32), labels


def real_floor(extractor, train_images, test_features, num, seed=0, on_batch=None) -> float:
    """FID of `num` random training images against the test split: the real-vs-real floor."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(train_images), min(num, len(train_images)), replace=False)
    return fid_from_features(extractor.features(train_images[index], on_batch=on_batch),
                             test_features)


def evaluate_generator(generator, extractor, data, num_samples, z_dim, seed=0,
                       show_progress=False) -> dict:
    """FID and KID against the test split, precision/recall (k=3), the floor and, for a
    conditional generator and a classifier extractor, the per-class accuracy.

    Args:
        generator: the (EMA) generator.
        extractor: a `gan.feature_extractor.FeatureExtractor`.
        data: the `gan.image_data.ImageData`.
        num_samples: generated images (and train images for the floor).
        z_dim: latent size.
        seed: of the sampling.
        show_progress: report the images generated and featurized (`attn_core.progress`).

    Returns:
        {"fid", "kid", "kid_std", "precision", "recall", "fid_floor", "feature_extractor",
        "eval_samples"} plus "class_accuracy" and "per_class_accuracy" when conditional.
    """
    num_classes = generator.config.num_classes
    with_classes = bool(num_classes and extractor.classes_model is not None)
    floor_images = min(num_samples, len(data.train_images))
    total = (2 + with_classes) * num_samples + len(data.test_images) + floor_images
    with progress.phase("evaluation", total, unit="image", enabled=show_progress) as bar:
        done = [0]

        def advance(count):
            done[0] += count
            bar.update(done[0])

        fakes, labels = generate_images(generator, num_samples, num_classes, z_dim, seed,
                                        on_batch=advance)
        fake_features = extractor.features(fakes, on_batch=advance)
        test_features = extractor.features(data.test_images, on_batch=advance)
        kid, kid_std = kernel_inception_distance(fake_features, test_features, seed=seed)
        precision, recall = precision_recall(test_features, fake_features, k=3)
        metrics = {
            "fid": fid_from_features(fake_features, test_features),
            "kid": kid,
            "kid_std": kid_std,
            "precision": precision,
            "recall": recall,
            "fid_floor": real_floor(extractor, data.train_images, test_features, num_samples,
                                    seed, on_batch=advance),
            "feature_extractor": extractor.name,
            "eval_samples": int(num_samples),
        }
        if with_classes:
            predicted = extractor.predict_classes(fakes, on_batch=advance)
            per_class = {data.class_names[k]: float(np.mean(predicted[labels == k] == k))
                         for k in range(num_classes) if np.any(labels == k)}
            metrics["class_accuracy"] = float(np.mean(predicted == labels))
            metrics["per_class_accuracy"] = per_class
    return metrics
