"""Tests for attn_core.checkpoint."""

import json
import os
import re

import keras
import numpy as np
import pytest

from attn_core.checkpoint import CheckpointManager, atomic_write, build_optimizer


def _model(units=3, seed=0):
    initializer = keras.initializers.RandomNormal(seed=seed)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(units, kernel_initializer=initializer, bias_initializer="ones"),
            keras.layers.Dense(2, kernel_initializer=initializer),
        ]
    )


def _trained(seed=0, units=3):
    """A model and an Adam optimizer with non-trivial slot values (two eager updates)."""
    model = _model(units, seed)
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        variables = model.trainable_variables
        grads = [rng.normal(size=tuple(v.shape)).astype("float32") for v in variables]
        optimizer.apply(grads, model.trainable_variables)
    return model, optimizer


def _values(*objects):
    return [keras.ops.convert_to_numpy(v) for obj in objects for v in obj.variables]


def test_round_trip_into_fresh_model_and_optimizer(tmp_path):
    model, optimizer = _trained(seed=0)
    manager = CheckpointManager(tmp_path / "ckpt")
    assert manager.latest() is None
    extra = {"epoch": 2, "best_bleu": np.float32(0.5), "rng": np.arange(3, dtype=np.uint32)}
    path = manager.save(10, [model, optimizer], extra)
    assert path.name == "ckpt-00000010.npz" and path.exists()
    assert manager.latest() == 10

    fresh_model = _model(seed=1)
    fresh_optimizer = build_optimizer(keras.optimizers.Adam(learning_rate=0.01), fresh_model)
    assert len(fresh_optimizer.variables) == len(optimizer.variables)
    before = _values(fresh_model, fresh_optimizer)
    assert not all(
        np.array_equal(a, b) for a, b in zip(before, _values(model, optimizer), strict=True)
    )
    restored = CheckpointManager(tmp_path / "ckpt").restore([fresh_model, fresh_optimizer])
    assert restored == {"epoch": 2, "best_bleu": 0.5, "rng": [0, 1, 2]}
    for a, b in zip(_values(fresh_model, fresh_optimizer), _values(model, optimizer), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(fresh_optimizer.iterations) == 2


def test_restore_without_checkpoint_returns_none(tmp_path):
    model = _model()
    before = _values(model)
    assert CheckpointManager(tmp_path).restore(model) is None
    for a, b in zip(before, _values(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_max_to_keep_prunes_oldest(tmp_path):
    model = _model()
    manager = CheckpointManager(tmp_path, max_to_keep=2)
    for step in range(1, 5):
        manager.save(step, model, {"step_seen": step})
    assert manager.steps == [3, 4]
    assert manager.latest() == 4
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == [
        "ckpt-00000003.json",
        "ckpt-00000003.npz",
        "ckpt-00000004.json",
        "ckpt-00000004.npz",
    ]
    assert manager.restore(model, step=3) == {"step_seen": 3}
    assert manager.restore(model) == {"step_seen": 4}


@pytest.mark.parametrize("fail_on", ["ckpt-00000002.npz", "checkpoint.json"])
def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch, fail_on):
    model, _ = _trained(seed=0)
    manager = CheckpointManager(tmp_path)
    manager.save(1, model, {"epoch": 1})
    saved = _values(model)
    for v in model.variables:
        v.assign(np.zeros(v.shape, dtype="float32"))

    real_replace = os.replace

    def crashing_replace(src, dst):
        if os.path.basename(dst) == fail_on:
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        manager.save(2, model, {"epoch": 2})
    monkeypatch.undo()

    assert json.loads((tmp_path / "checkpoint.json").read_text())["latest"] == 1
    assert not list(tmp_path.glob(".*.tmp"))  # Temporary files are cleaned up.
    fresh = _model(seed=5)
    assert CheckpointManager(tmp_path).restore(fresh) == {"epoch": 1}
    for a, b in zip(_values(fresh), saved, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("corruption", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_raises_value_error_naming_file(tmp_path, corruption):
    model = _model()
    manager = CheckpointManager(tmp_path)
    path = manager.save(3, model, {})
    data = path.read_bytes()
    corrupted = {"truncate": data[: len(data) // 2], "garbage": b"\x00junk" * 50, "empty": b""}
    path.write_bytes(corrupted[corruption])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        manager.restore(model)


def test_corrupt_state_file_raises_value_error_naming_file(tmp_path):
    model = _model()
    manager = CheckpointManager(tmp_path)
    manager.save(3, model, {"epoch": 1})
    state_path = tmp_path / "ckpt-00000003.json"
    state_path.write_text('{"step": 3, "extra_')
    with pytest.raises(ValueError, match=re.escape(str(state_path))):
        manager.restore(model)


def test_corrupt_index_raises_value_error_naming_file(tmp_path):
    manager = CheckpointManager(tmp_path)
    (tmp_path / "checkpoint.json").write_text("{trunc")
    with pytest.raises(ValueError, match="checkpoint.json"):
        manager.latest()


def test_shape_mismatch_raises_value_error(tmp_path):
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, _model(units=3), {})
    wider = _model(units=5)
    before = _values(wider)
    with pytest.raises(ValueError, match=r"ckpt-00000001\.npz.*\(4, 3\).*\(4, 5\)") as info:
        manager.restore(wider)
    assert "kernel" in str(info.value) and str(path) in str(info.value)
    for a, b in zip(before, _values(wider), strict=True):  # Nothing was assigned.
        np.testing.assert_array_equal(a, b)


def test_unbuilt_optimizer_count_mismatch(tmp_path):
    model, optimizer = _trained()
    manager = CheckpointManager(tmp_path)
    manager.save(1, [model, optimizer], {})
    with pytest.raises(ValueError, match="build_optimizer"):
        manager.restore([_model(), keras.optimizers.Adam()])


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_to_keep=0"):
        CheckpointManager(tmp_path, max_to_keep=0)
    manager = CheckpointManager(tmp_path)
    with pytest.raises(ValueError, match="step=-1"):
        manager.save(-1, _model(), {})
    with pytest.raises(ValueError, match="extra_state"):
        manager.save(1, _model(), {"bad": object()})
    with pytest.raises(ValueError, match="variables"):
        manager.save(1, [object()], {})
    assert manager.latest() is None


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def crash_midway(f):
        f.write(b"partial")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        atomic_write(path, crash_midway)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_prefix_restores_the_model_alone_from_a_model_and_optimizer_checkpoint(tmp_path):
    model, optimizer = _trained(seed=0)
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(3, [model, optimizer], {"step": 3})
    fresh = _model(seed=1)
    with pytest.raises(ValueError, match="one value per variable"):
        manager.restore([fresh])
    assert manager.restore([fresh], prefix=True) == {"step": 3}
    for a, b in zip(_values(fresh), _values(model), strict=True):
        np.testing.assert_array_equal(a, b)
