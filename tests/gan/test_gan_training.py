"""train_and_evaluate on a tiny configuration: a step in float32 and mixed_float16, outputs,
resume; and the generate / attention_map entry points on the result."""

import json
import subprocess
import sys

import numpy as np
import pytest

from attn_core.flags import CommonConfig
from gan.feature_extractor import FeatureExtractor
from gan.image_data import ImageData
from gan.model_config import ModelConfig
from gan.train_config import TrainConfig

TINY_MODEL = dict(resolution=8, z_dim=8, g_channels=8, d_channels=8, g_attention_res=8,
                  d_attention_res=4)
TINY_TRAIN = TrainConfig(steps=2, batch_size=8, sample_every=2, checkpoint_every=2,
                         log_every=1, eval_samples=24)


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, 48).astype(np.int32)
    return ImageData("tiny", images[:32], labels[:32], images[32:], labels[32:], ("a", "b"))


def _train(workdir, data, precision="float32", num_classes=0, train_config=TINY_TRAIN):
    import keras

    from gan.trainer import train_and_evaluate

    config = ModelConfig(num_classes=num_classes, **TINY_MODEL)
    config.save(workdir)
    common = CommonConfig(workdir=str(workdir), seed=0, precision=precision)
    extractor = FeatureExtractor.random(8, 1, 2)
    lines = []
    try:
        metrics = train_and_evaluate(data, config, train_config, common, workdir, extractor,
                                     log=lines.append)
    finally:
        keras.config.set_dtype_policy("float32")
    return metrics, lines


@pytest.mark.parametrize("precision, num_classes", [("float32", 0), ("mixed_float16", 2)])
def test_training_steps_are_finite_and_write_outputs(tmp_path, tiny_data, precision,
                                                     num_classes):
    metrics, _ = _train(tmp_path, tiny_data, precision, num_classes)
    for key in ("fid", "kid", "precision", "recall", "fid_floor", "feature_extractor",
                "steps", "images_per_second", "replicas"):
        assert key in metrics
    assert metrics["steps"] == 2 and np.isfinite(metrics["fid"])
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 2
    assert (tmp_path / "samples" / "step_0000002.png").is_file()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    if precision == "mixed_float16":
        assert "skipped_steps_d" in metrics and "per_class_accuracy" in metrics


def test_resume_and_sampling_scripts(tmp_path, tiny_data):
    import dataclasses

    _train(tmp_path, tiny_data, train_config=dataclasses.replace(TINY_TRAIN, eval_samples=0))
    metrics, lines = _train(tmp_path, tiny_data, train_config=dataclasses.replace(
        TINY_TRAIN, steps=3, eval_samples=0))
    assert "resumed from step 2" in lines and metrics["steps"] == 3

    grid, att = tmp_path / "grid.png", tmp_path / "att.png"
    for args in ([sys.executable, "-m", "gan.generate", f"--model_dir={tmp_path}", "--num=4",
                  f"--out={grid}"],
                 [sys.executable, "-m", "gan.attention_map", f"--model_dir={tmp_path}",
                  "--samples=2", f"--out={att}"]):
        result = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    assert grid.stat().st_size > 0 and att.stat().st_size > 0
