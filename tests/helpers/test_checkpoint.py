"""Tests for attn_core.checkpoint."""

import json
import os
import re

import keras
import numpy as np
import pytest

from attn_core.checkpoint import CheckpointManager, atomic_write, build_optimizer
from attn_core.errors import UserError


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
    manager = CheckpointManager(tmp_path, max_to_keep=1)  # at least two are kept
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


def test_damaged_index_falls_back_to_the_files_on_disk(tmp_path):
    model, _ = _trained(seed=0)
    manager = CheckpointManager(tmp_path)
    manager.save(1, {"model": model}, {"at": 1})
    manager.save(2, {"model": model}, {"at": 2})
    (tmp_path / "checkpoint.json").write_text("{trunc")
    lines = []
    reopened = CheckpointManager(tmp_path, log=lines.append)
    assert reopened.steps == [1, 2] and reopened.latest() == 2
    assert reopened.restore({"model": _model(seed=3)}) == {"at": 2}
    assert len(lines) == 1 and "checkpoint.json is damaged" in lines[0]


def test_damaged_newest_checkpoint_is_skipped_with_one_line(tmp_path):
    model, _ = _trained(seed=0)
    manager = CheckpointManager(tmp_path)
    manager.save(1, {"model": model}, {"at": 1})
    saved = _values(model)
    for v in model.variables:
        v.assign(np.zeros(v.shape, dtype="float32"))
    path = manager.save(2, {"model": model}, {"at": 2})
    path.write_bytes(path.read_bytes()[:100])  # truncated
    lines = []
    fresh = _model(seed=3)
    manager = CheckpointManager(tmp_path, log=lines.append)
    assert manager.restore({"model": fresh}) == {"at": 1} and manager.restored == 1
    assert manager.restored_step() == 1
    for a, b in zip(_values(fresh), saved, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any("damaged checkpoint of step 2" in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_named_groups_restore_by_name_and_subset(tmp_path):
    model, optimizer = _trained(seed=0)
    manager = CheckpointManager(tmp_path)
    manager.save(5, {"optimizer": optimizer, "model": model}, {"step": 5})
    fresh = _model(seed=1)
    assert manager.restore({"model": fresh}) == {"step": 5}
    for a, b in zip(_values(fresh), _values(model), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="group 'ema'"):
        manager.restore({"ema": _model()})


def test_older_positional_layout_still_restores(tmp_path):
    model = _model(seed=0)
    variables = model.variables
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}
    paths = np.array([v.path for v in variables], dtype=str)
    np.savez(tmp_path / "ckpt-00000007.npz", __paths__=paths, **arrays)
    (tmp_path / "ckpt-00000007.json").write_text('{"step": 7, "extra_state": {"e": 1}}')
    (tmp_path / "checkpoint.json").write_text('{"latest": 7, "steps": [7]}')
    fresh = _model(seed=4)
    assert CheckpointManager(tmp_path).restore({"model": fresh}) == {"e": 1}
    for a, b in zip(_values(fresh), _values(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_opening_removes_temporaries_and_orphans_and_files_follow_the_umask(tmp_path):
    model = _model()
    manager = CheckpointManager(tmp_path)
    manager.save(1, model)
    manager.save(2, model)
    (tmp_path / ".ckpt-00000003.npz.abc.tmp").write_bytes(b"partial")
    for suffix in ("npz", "json"):  # a checkpoint the index no longer lists
        (tmp_path / f"ckpt-00000000.{suffix}").write_bytes(b"old")
    CheckpointManager(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint.json", "ckpt-00000001.json", "ckpt-00000001.npz",
                     "ckpt-00000002.json", "ckpt-00000002.npz"]
    old = os.umask(0o022)
    try:
        manager.save(3, model)
    finally:
        os.umask(old)
    assert (tmp_path / "ckpt-00000003.npz").stat().st_mode & 0o777 == 0o644
    CheckpointManager(tmp_path, read_only=True).restore(model)  # read-only opens clean nothing


def test_shape_mismatch_raises_value_error(tmp_path):
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, _model(units=3), {})
    wider = _model(units=5)
    before = _values(wider)
    with pytest.raises(UserError, match=r"ckpt-00000001\.npz.*\(4, 5\).*\(4, 3\)") as info:
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
    with pytest.raises(ValueError, match="first extra saved value"):
        manager.restore([fresh])
    assert manager.restore([fresh], prefix=True) == {"step": 3}
    for a, b in zip(_values(fresh), _values(model), strict=True):
        np.testing.assert_array_equal(a, b)
