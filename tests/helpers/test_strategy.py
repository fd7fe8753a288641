"""Tests for attn_core.strategy."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from attn_core.strategy import make_strategy

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# Logical CPU devices must be configured before TensorFlow initializes its runtime, so this
# runs in a fresh interpreter.
_MIRRORED_SCRIPT = """
import json
import keras
import numpy as np
from attn_core.strategy import make_strategy

keras.utils.set_random_seed(0)  # Seeding must not initialize the runtime.
strategy = make_strategy("mirrored", cpu_devices=2)
again = make_strategy("mirrored", cpu_devices=2)  # Same split after initialization: fine.
with strategy.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
loss = model.train_on_batch(np.ones((4, 3)), np.ones((4, 1)))
try:
    make_strategy("mirrored", cpu_devices=3)
    error = None
except RuntimeError as e:
    error = str(e)
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "again": again.num_replicas_in_sync,
    "devices": list(strategy.extended.worker_devices),
    "loss_finite": bool(np.isfinite(loss)),
    "error": error,
}))
"""


def test_default_strategy():
    strategy = make_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_over_logical_cpus_in_subprocess():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["again"] == 2
    assert [d.lower().endswith(f"cpu:{i}") for i, d in enumerate(report["devices"])] == [True] * 2
    assert report["loss_finite"]
    assert "already initialized" in report["error"] and "first" in report["error"]


@pytest.mark.parametrize("tf_config", [None, "", "{not json", json.dumps({"task": {}})])
def test_multi_worker_requires_valid_tf_config(monkeypatch, tf_config):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        make_strategy("tpu")
    with pytest.raises(ValueError, match="Received: cpu_devices=-1"):
        make_strategy("mirrored", cpu_devices=-1)


def test_worker_sum_on_one_worker_is_the_values():
    from attn_core.strategy import barrier, worker_sum

    values = worker_sum(make_strategy(), [1, 2.5])
    assert values.dtype == "float64" and values.tolist() == [1.0, 2.5]
    barrier(make_strategy())  # one worker: returns at once


def test_worker_sum_and_barrier_over_two_workers(run_two_workers):
    results = run_two_workers("tests.helpers._worker_sum_probe", lambda index: [], timeout=120)
    outs = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    assert [o["index"] for o in outs] == [0, 1] and {o["count"] for o in outs} == {2}
    for out in outs:  # the same exact sums on both workers (2**52 + 1 needs float64)
        assert out["sum"] == [3.0, 2.0**52 + 1, 20.0]
