"""gan.train under tf.distribute: a step on two replicas (mirrored over two logical CPUs, or
two MultiWorkerMirroredStrategy workers) equals the single-process step on the same global
batch; two workers stay in sync and only the chief writes; a non-chief worker resumes from
the chief's checkpoints and writes nothing; the batch norm uses the global statistics and
the loss-scale decisions agree across replicas."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from attn_core.checkpoint import CheckpointManager

ROOT = pathlib.Path(__file__).resolve().parents[2]
G_LR = 1e-4  # TrainConfig's default generator learning rate
TINY = ["--resolution=8", "--z_dim=8", "--g_channels=8", "--d_channels=8",
        "--g_attention_res=8", "--d_attention_res=4", "--conditional", "--batch_size=8",
        "--eval_samples=0", "--fid_extractor=none", "--log_every=1", "--sample_every=1",
        "--checkpoint_every=1", "--seed=3"]
# Biases of G that feed a batch norm: it subtracts the batch mean, so their gradient is 0
# in exact arithmetic, and rounding noise in float32.
ZERO_GRADIENT = re.compile(r"^generator(_ema)?/(sn_dense/dense|block\d+/sn_(conv1/conv1|"
                           r"conv2/conv2|shortcut/shortcut))/bias$")


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of 12 low-contrast 8×8 images. D's initial logits on them straddle the
    hinge margin 1 (0.3 to 2.4 at --seed=3): on full-contrast noise they all exceed it, the
    real images get no gradient, and a wrong split of them would go unnoticed."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir()
        for i in range(12):
            amplitude = rng.uniform(4, 32)
            pixels = np.round(128 + amplitude * rng.uniform(-1, 1, (8, 8))).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _train_args(model_dir, image_folder, *extra):
    return [f"--model_dir={model_dir}", f"--dataset=folder:{image_folder}", *TINY, *extra]


@pytest.fixture(scope="module")
def one_step_runs(tmp_path_factory, image_folder):
    """Model dirs after one step of the default strategy and of mirrored over 2 CPUs (a
    fresh interpreter each: the CPU must be split before TensorFlow starts)."""
    root = tmp_path_factory.mktemp("one_step")
    runs = {"default": [], "mirrored": ["--strategy=mirrored", "--cpu_devices=2"]}
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "gan.train",
         *_train_args(root / name, image_folder, "--steps=1", *extra)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, extra in runs.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}:\n{err[-3000:]}"
    return {name: root / name for name in runs}


def _checkpoint(model_dir, step):
    """{variable path: value} of every group of checkpoint `step`."""
    path = CheckpointManager(model_dir / "checkpoints", read_only=True).checkpoint_path(step)
    values = {}
    with np.load(path) as data:
        for key in sorted(k for k in data.files if k.endswith("/__paths__")):
            group = key[: -len("/__paths__")]
            for i, name in enumerate(str(p) for p in data[key]):
                values[name] = data[f"{group}/{i:05d}"]
    return values


def assert_same_first_step(reference_dir, model_dir):
    """The step-1 checkpoints (G, D, EMA-G, both Adams; moving statistics, u) agree.

    Tolerance: two replicas add partial sums (batch-norm statistics, losses, gradients) in
    another order than one process, so values differ by float32 rounding: rtol=1e-5 and
    atol=1e-6 (the worst seen is under 3e-7 beyond rtol, on values up to 20). The biases
    in ZERO_GRADIENT are the exception: their gradient is rounding noise, and Adam's first
    step lr·g/(|g| + 1e-7) turns noise into up to ±lr, so they get atol = 2·lr (seen: up
    to 0.54·lr). Their gradients themselves, in Adam's `momentum` slots (m = g at step 1
    with β1 = 0), are held to the tight tolerance like everything else.
    """
    reference, other = _checkpoint(reference_dir, 1), _checkpoint(model_dir, 1)
    assert list(reference) == list(other)
    zero_gradient = [name for name in reference if ZERO_GRADIENT.match(name)]
    assert len(zero_gradient) == 8, zero_gradient  # dense, conv1, conv2, shortcut; G and EMA
    for name, value in reference.items():
        atol = 2 * G_LR if name in zero_gradient else 1e-6
        np.testing.assert_allclose(other[name], value, rtol=1e-5, atol=atol, err_msg=name)
    start = reference["generator/block0/sn_conv1/conv1/kernel"]
    assert np.abs(start).max() > 0.01  # the comparisons above are not all between zeros


def test_mirrored_step_equals_the_single_process_step(one_step_runs):
    assert json.loads((one_step_runs["mirrored"] / "metrics.json").read_text())["replicas"] == 2
    assert_same_first_step(one_step_runs["default"], one_step_runs["mirrored"])


def _fingerprint(stdout):
    found = re.findall(r"^weights fingerprint: ([0-9a-f]{16})$", stdout, re.MULTILINE)
    assert len(found) == 1, stdout
    return found[0]


def test_two_workers_stay_in_sync_and_only_the_chief_writes(tmp_path, run_two_workers,
                                                           image_folder, one_step_runs):
    model_dir = tmp_path / "shared"  # not created: the chief creates it
    results = run_two_workers("gan.train", lambda index: _train_args(
        model_dir, image_folder, "--strategy=multi_worker", "--steps=2"), timeout=600)
    assert _fingerprint(results[0].stdout) == _fingerprint(results[1].stdout)
    assert "worker 1 of 2: not the chief, writes nothing" in results[1].stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["steps"] == 2
    # Only the chief wrote: one event file, and each other file once.
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert len(events) == 1, files
    assert sorted(set(files) - set(events)) == [
        "checkpoints/checkpoint.json", "checkpoints/ckpt-00000001.json",
        "checkpoints/ckpt-00000001.npz", "checkpoints/ckpt-00000002.json",
        "checkpoints/ckpt-00000002.npz", "data_info.json", "metrics.json",
        "model_config.json", "samples/step_0000001.png", "samples/step_0000002.png",
        "train_config.json"]
    # Each worker's replica got its half of the global batch of images and noise.
    assert_same_first_step(one_step_runs["default"], model_dir)


class _NonChief:
    """A strategy that reports being task 1 of 2 workers (what `attn_core.strategy.worker_info`
    reads) and otherwise is `dist`."""

    def __init__(self, dist):
        import tensorflow as tf

        self._dist = dist
        self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": ["a:1", "b:1"]}), task_type="worker", task_id=1)

    def __getattr__(self, name):
        return getattr(self._dist, name)


def _files(directory):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*")}


def test_a_non_chief_resumes_from_the_chief_and_writes_nothing(tmp_path):
    import dataclasses

    import keras
    import tensorflow as tf

    from attn_core.flags import CommonConfig
    from gan.image_data import ImageData
    from gan.model_config import ModelConfig
    from gan.train_config import TrainConfig
    from gan.trainer import train_and_evaluate

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 1), dtype=np.uint8)
    data = ImageData("tiny", images[:20], np.zeros(20, np.int32), images[20:],
                     np.zeros(4, np.int32), ("a",))
    config = ModelConfig(resolution=8, z_dim=8, g_channels=8, d_channels=8,
                         attention="none")
    train = TrainConfig(steps=1, batch_size=4, eval_samples=0)
    common = CommonConfig(seed=0)
    non_chief = _NonChief(tf.distribute.get_strategy())

    def run(model_dir, steps, dist=None):
        lines = []
        try:
            train_and_evaluate(data, config, dataclasses.replace(train, steps=steps), common,
                               model_dir, log=lines.append, dist=dist)
        finally:
            keras.config.set_dtype_policy("float32")
        return lines

    missing = tmp_path / "not_created_yet"  # a non-chief may start before the chief
    lines = run(missing, 1, non_chief)
    assert not missing.exists() and any(line.startswith("weights fingerprint: ")
                                        for line in lines)
    shared = tmp_path / "shared"
    run(shared, 1)  # the chief
    before = _files(shared)
    lines = run(shared, 2, non_chief)
    assert "resumed from step 1" in lines and "worker 1 of 2: not the chief, writes nothing " \
        f"in {shared}" in lines
    assert _files(shared) == before


TWO_REPLICAS = """
from attn_core.strategy import make_strategy
dist = make_strategy("mirrored", cpu_devices=2)
import numpy as np, tensorflow as tf
from gan.conditional_batch_norm import ConditionalBatchNorm
from attn_core.worker_sync import poison_unless_all_finite

rng = np.random.default_rng(0)
x = (rng.normal(1.0, 2.0, (8, 2, 2, 3)) * np.arange(1, 9)[:, None, None, None]).astype("f4")
labels = np.array([0, 1] * 4, np.int32)
cotangent = rng.normal(size=x.shape).astype("f4")
gain, bias = rng.normal(size=(2, 3)).astype("f4"), rng.normal(size=(2, 3)).astype("f4")

def half(array):  # replica r gets rows [4r, 4r + 4)
    return dist.experimental_distribute_values_from_function(
        lambda ctx: array[4 * ctx.replica_id_in_sync_group:][:4])

def forward(bn, x, labels, cotangent):  # the output and d<output, cotangent>/dx
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bn(x, labels, training=True)
        loss = tf.reduce_sum(y * cotangent)
    return y, tape.gradient(loss, x)

with dist.scope():
    bn = ConditionalBatchNorm(num_classes=2, momentum=0.0)  # moving stats = batch stats
    bn.build(x.shape)
    bn.gain.assign(gain)
    bn.bias.assign(bias)
reference = ConditionalBatchNorm(num_classes=2, momentum=0.0)
reference.build(x.shape)
reference.gain.assign(gain)
reference.bias.assign(bias)
y_ref, dx_ref = forward(reference, tf.constant(x), labels, cotangent)

per_replica = tf.function(lambda *a: dist.run(lambda *b: forward(bn, *b), args=a))(
    half(x), half(labels), half(cotangent))
y, dx = (np.concatenate(dist.experimental_local_results(t)) for t in per_replica)
np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-5)
for moving, stat in ((bn.moving_mean, x.mean((0, 1, 2))), (bn.moving_variance,
                                                            x.var((0, 1, 2)))):
    for copy in moving.value.values:  # both replicas' copies hold the global statistics
        np.testing.assert_allclose(copy.numpy(), stat, rtol=1e-5)

def poisoned(bad_replicas):
    grads = dist.experimental_distribute_values_from_function(lambda ctx: tf.constant(
        [np.inf if ctx.replica_id_in_sync_group in bad_replicas else 1.0, 2.0]))
    out = tf.function(lambda g: dist.run(lambda h: poison_unless_all_finite([h, None]),
                                         args=(g,)))(grads)
    assert out[1] is None
    return [t.numpy() for t in dist.experimental_local_results(out[0])]

assert all((g == [1.0, 2.0]).all() for g in poisoned(()))
assert all(np.isnan(g).all() for g in poisoned((1,)))  # replica 0's are finite, too
print("two replicas agree")
"""


def test_two_replicas_share_batch_norm_statistics_and_loss_scale_decisions():
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "two replicas agree" in result.stdout
