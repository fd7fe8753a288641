"""Generator, Discriminator and their blocks: shapes, dtypes, attention at init, configs."""

import numpy as np
import pytest

from attn_core import precision
from gan.conditional_batch_norm import ConditionalBatchNorm
from gan.discriminator import Discriminator
from gan.generator import Generator
from gan.model_config import ModelConfig
from gan.spectral_self_attention import SpectralSelfAttention2D


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_shapes(resolution, num_classes):
    config = ModelConfig(resolution=resolution, num_classes=num_classes, g_channels=8,
                         d_channels=8, z_dim=16, image_channels=3)
    g, d = Generator(config), Discriminator(config)
    labels = np.array([0, 2]) if num_classes else None
    images, scores = g(np.zeros((2, 16), np.float32), labels, training=True,
                       return_attention_scores=True)
    assert images.shape == (2, resolution, resolution, 3) and images.dtype == "float32"
    assert scores.shape == (2, 16 * 16, 8 * 8)
    logits = d(images, labels, training=True)
    assert logits.shape == (2,) and logits.dtype == "float32"


def test_ablation_has_no_attention():
    config = ModelConfig(attention="none", g_channels=8, d_channels=8, z_dim=16)
    g = Generator(config)
    images, scores = g(np.zeros((2, 16), np.float32), return_attention_scores=True)
    assert images.shape == (2, 32, 32, 1) and scores is None
    assert g.attention is None and Discriminator(config).attention is None


def test_attention_block_is_identity_at_init():
    layer = SpectralSelfAttention2D()
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 16)).astype(np.float32)
    y, scores = layer(x, return_attention_scores=True, training=True)
    assert float(layer.gamma.numpy()) == 0.0
    np.testing.assert_array_equal(np.asarray(y), x)
    np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, atol=1e-5)
    assert len(layer.trainable_weights) == 5 and len(layer.non_trainable_weights) == 4


def test_mixed_float16_keeps_logits_and_statistics_float32():
    with precision.precision_policy("mixed_float16"):
        config = ModelConfig(num_classes=2, g_channels=8, d_channels=8, z_dim=16)
        g, d = Generator(config), Discriminator(config)
        images, scores = g(np.ones((2, 16), np.float32), np.array([0, 1]), training=True,
                           return_attention_scores=True)
        logits = d(images, np.array([0, 1]), training=True)
    assert images.dtype == "float32" and logits.dtype == "float32"
    assert all(w.dtype == "float32" for w in g.weights + d.weights)
    assert np.isfinite(np.asarray(images)).all() and np.isfinite(np.asarray(scores)).all()


def test_conditional_batch_norm_uses_class_gain_and_float32_statistics():
    with precision.precision_policy("mixed_float16"):
        bn = ConditionalBatchNorm(num_classes=2)
        x = np.random.default_rng(0).normal(3.0, 2.0, (4, 2, 2, 3)).astype(np.float32)
        bn(x, np.array([0, 0, 1, 1]), training=True)
        bn.gain.assign(np.array([[1.0] * 3, [2.0] * 3], np.float32))
        y = np.asarray(bn(x, np.array([0, 0, 1, 1]), training=True), np.float32)
    assert bn.moving_mean.dtype == "float32" and y.dtype == np.float32
    normalized = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(y[:2], normalized[:2], atol=1e-2)
    np.testing.assert_allclose(y[2:], 2 * normalized[2:], atol=2e-2)


@pytest.mark.parametrize("kwargs, message", [
    ({"resolution": 48}, "Received: resolution=48"),
    ({"attention": "local"}, "Received: attention='local'"),
    ({"g_attention_res": 64}, "Received: g_attention_res=64"),
    ({"d_attention_res": 32}, "Received: d_attention_res=32"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_config_round_trips(tmp_path):
    config = ModelConfig(num_classes=10, resolution=64)
    config.save(tmp_path)
    assert ModelConfig.load(tmp_path) == config


def test_conditional_batch_norm_config_round_trips():
    bn = ConditionalBatchNorm(num_classes=3, momentum=0.9)
    clone = ConditionalBatchNorm.from_config(bn.get_config())
    assert (clone.num_classes, clone.momentum) == (3, 0.9)
