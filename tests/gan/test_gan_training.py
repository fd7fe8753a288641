"""The trainer on a tiny configuration: a few steps under each precision policy (finite,
first losses close to float32's, outputs written), resume under a mixed policy, the float16
health counters, and gan.generate / gan.attention_map on the result."""

import dataclasses
import json
import math
import shutil

import keras
import numpy as np
import pytest
from gan_cases import TINY_MODEL, run_main

from attn_core import precision
from attn_core.flags import CommonConfig
from gan.feature_extractor import FeatureExtractor
from gan.model_config import ModelConfig
from gan.train_config import TrainConfig

# Eager steps: what a step computes under each policy is the subject here, and tracing the
# GAN's steps costs more than running them; the CLI and distributed tests run the graphs.
pytestmark = pytest.mark.usefixtures("eager_module")

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
TINY_TRAIN = TrainConfig(steps=2, batch_size=8, sample_every=2, checkpoint_every=2,
                         log_every=1, eval_samples=24)


def _trainer(model_dir, data, policy, train_config=TINY_TRAIN, num_classes=2,
             extractor=None):
    from gan.trainer import Trainer

    lines = []
    trainer = Trainer(data, ModelConfig(num_classes=num_classes, **TINY_MODEL), train_config,
                      CommonConfig(seed=0, precision=policy), model_dir, extractor,
                      log=lines.append)
    return trainer, lines


def _finish(trainer):
    try:
        return trainer.finish(trainer())
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="module")
def policy_runs(tmp_path_factory, tiny_data):
    """{policy: (model_dir, first step's losses, metrics)} of 2 steps with evaluation."""
    root = tmp_path_factory.mktemp("policies")
    extractor = FeatureExtractor.random(8, 1, 2)
    runs = {}
    for policy in POLICIES:
        trainer, _ = _trainer(root / policy, tiny_data, policy, extractor=extractor)
        first = trainer.train_step()
        runs[policy] = (root / policy, first, _finish(trainer))
    return runs


@pytest.mark.parametrize("policy", POLICIES)
def test_training_steps_are_finite_and_write_outputs(policy_runs, policy):
    model_dir, first, metrics = policy_runs[policy]
    for key in ("fid", "kid", "precision", "recall", "fid_floor", "feature_extractor",
                "steps", "images_per_second", "replicas", "per_class_accuracy",
                "skipped_steps_d", "skipped_steps_g", "loss_scale_d", "loss_scale_g"):
        assert key in metrics
    assert metrics["steps"] == 2 and np.isfinite(metrics["fid"])
    assert metrics["precision_policy"] == policy
    assert all(np.isfinite(v) for v in first.values())
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved["steps"] == 2 and saved["precision_policy"] == policy
    assert (model_dir / "samples" / "step_0000002.png").is_file()
    assert list(model_dir.glob("events.out.tfevents.*"))
    for side in ("d", "g"):  # the default initial scale, 2**15, may overflow at first
        start = 2.0 ** 15 if policy == "mixed_float16" else 1.0
        halvings = math.log2(start / metrics[f"loss_scale_{side}"])
        assert metrics[f"skipped_steps_{side}"] == halvings, metrics


@pytest.mark.parametrize("policy", POLICIES[1:])
def test_first_losses_are_close_to_float32(policy_runs, policy):
    reference, first = policy_runs["float32"][1], policy_runs[policy][1]
    tolerance = 0.02 if policy == "mixed_float16" else 0.1  # bfloat16 keeps 8 bits
    # G's loss follows D's update, which float16 skips when its first scale overflows.
    compared = ("d_loss", "d_real", "d_fake") + (() if first["d_skipped"] else ("g_loss",))
    for key in compared:
        assert first[key] == pytest.approx(reference[key], abs=tolerance), key


def test_resume_under_a_mixed_policy_and_the_sampling_tools(policy_runs, tiny_data, tmp_path,
                                                            capsys):
    from gan import attention_map, generate

    model_dir = tmp_path / "model"
    shutil.copytree(policy_runs["mixed_bfloat16"][0], model_dir)
    ModelConfig(num_classes=2, **TINY_MODEL).save(model_dir)  # gan.train writes it
    trainer, lines = _trainer(model_dir, tiny_data, "mixed_bfloat16",
                              dataclasses.replace(TINY_TRAIN, steps=3, eval_samples=0))
    assert "resumed from step 2" in lines
    metrics = _finish(trainer)
    assert metrics["steps"] == 3 and metrics["precision_policy"] == "mixed_bfloat16"

    grid, att = tmp_path / "out" / "grid.png", tmp_path / "out" / "att.png"
    assert run_main(generate, [f"--model_dir={model_dir}", "--num=4", "--label=1",
                               f"--out={grid}"]) == 0
    assert run_main(attention_map, [f"--model_dir={model_dir}", "--samples=2",
                                    f"--out={att}"]) == 0
    assert grid.stat().st_size > 0 and att.stat().st_size > 0
    assert "4 samples of step 3 written to" in capsys.readouterr().out


def test_float16_counters_match_the_loss_scale_halvings(tmp_path, tiny_data, monkeypatch):
    """A scale of 2**60 overflows float16 gradients: every step is skipped and halves it."""
    import tensorflow as tf

    huge = 2.0 ** 60
    wrap = precision.wrap_optimizer

    def wrap_huge(optimizer, policy):
        if precision.needs_loss_scaling(policy):
            return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=huge)
        return wrap(optimizer, policy)

    monkeypatch.setattr(precision, "wrap_optimizer", wrap_huge)
    train = dataclasses.replace(TINY_TRAIN, steps=3, eval_samples=0, checkpoint_every=3)
    trainer, _ = _trainer(tmp_path, tiny_data, "mixed_float16", train)
    metrics = _finish(trainer)
    for side in ("d", "g"):
        halvings = math.log2(huge / metrics[f"loss_scale_{side}"])
        assert metrics[f"skipped_steps_{side}"] == halvings == 3, metrics
    tags = set()
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {"charts/loss_scale_d", "charts/loss_scale_g", "charts/skipped_steps_d",
            "charts/skipped_steps_g"} <= tags

    # A resume restores the scales and the counters, whatever the wrapper's initial scale.
    monkeypatch.setattr(precision, "wrap_optimizer", wrap)
    trainer, lines = _trainer(tmp_path, tiny_data, "mixed_float16",
                              dataclasses.replace(train, steps=4))
    assert "resumed from step 3" in lines
    assert float(trainer.d_opt.dynamic_scale.numpy()) == huge / 8
    assert (trainer.state.d_skipped, trainer.state.g_skipped) == (3, 3)
    keras.config.set_dtype_policy("float32")
