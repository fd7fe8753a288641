"""Hinge losses, FID, KID and precision/recall on inputs with known answers."""

import numpy as np
import pytest

from gan.fid import fid_from_features, frechet_distance
from gan.hinge_loss import discriminator_hinge_loss, generator_hinge_loss
from gan.kid import kernel_inception_distance
from gan.precision_recall import precision_recall


def test_hinge_losses_on_known_logits():
    real = np.array([2.0, 0.5, -1.0], np.float32)
    fake = np.array([-2.0, 0.0, 1.5], np.float32)
    # relu(1 - real) + relu(1 + fake)
    np.testing.assert_allclose(discriminator_hinge_loss(real, fake), [0.0, 1.5, 4.5])
    np.testing.assert_allclose(generator_hinge_loss(fake), [2.0, 0.0, -1.5])
    assert discriminator_hinge_loss(real.astype(np.float16), fake).dtype == "float32"


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 8))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    shift = np.array([1.0, 2.0, -2.0])
    expected = shift @ shift + np.sum(a + b - 2 * np.sqrt(a * b))  # 9 + 2
    assert frechet_distance(np.zeros(3), np.diag(a), shift, np.diag(b)) == pytest.approx(
        expected)


def test_fid_of_shifted_gaussian_samples_matches_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 4))
    shift = np.array([1.0, -1.0, 0.5, 2.0])
    y = rng.standard_normal((20000, 4)) + shift
    assert fid_from_features(x, y) == pytest.approx(shift @ shift, abs=0.05)


def test_kid_is_about_zero_on_identical_sets_and_positive_on_shifted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16))  # subsets of the same set rarely share points
    kid, _ = kernel_inception_distance(x, x, num_subsets=20, subset_size=100)
    assert abs(kid) < 0.01
    far, _ = kernel_inception_distance(x, x + 1.0, num_subsets=20, subset_size=100)
    assert far > 10 * abs(kid) and far > 0.1


def test_precision_recall_identical_and_disjoint_sets():
    x = np.random.default_rng(0).standard_normal((200, 4))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_classifier_training_and_evaluation_show_progress(tmp_path, tiny_data, capsys):
    """The long phases of gan.train report progress within them (on stderr)."""
    from gan_cases import TINY_MODEL

    from gan.classifier import classifier_info, train_classifier
    from gan.evaluation import evaluate_generator
    from gan.feature_extractor import FeatureExtractor
    from gan.generator import Generator
    from gan.model_config import ModelConfig

    train_classifier(tiny_data, tmp_path, epochs=2, batch_size=16)  # 2 batches an epoch
    err = capsys.readouterr().err
    assert "classifier: batch 4/4 (100%)" in err, err
    assert classifier_info(tmp_path)["epochs"] == 2

    generator = Generator(ModelConfig(num_classes=2, **TINY_MODEL)).build_for()
    extractor = FeatureExtractor.load_classifier(tmp_path)
    metrics = evaluate_generator(generator, extractor, tiny_data, 20, 8, show_progress=True)
    # 20 generated, 20 featurized, 16 test images, 20 training images, 20 classified
    assert "evaluation: image 96/96 (100%)" in capsys.readouterr().err
    assert np.isfinite(metrics["fid"]) and "per_class_accuracy" in metrics
