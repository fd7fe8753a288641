"""Tests for attn_core.run_dir."""

import datetime
import random
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_core.run_dir import make_run_dir, resolve_workdir, set_seeds


def _draw():
    return (
        random.random(),
        np.random.rand(3),  # noqa: NPY002 -- the legacy global generator is what is seeded.
        keras.ops.convert_to_numpy(keras.random.uniform((3,))),
        tf.random.uniform((3,)).numpy(),
    )


def test_set_seeds_reproduces_random_numbers():
    set_seeds(123)
    first = _draw()
    set_seeds(123)
    second = _draw()
    set_seeds(124)
    other = _draw()
    assert first[0] == second[0]
    for a, b in zip(first[1:], second[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0] != other[0]
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "1"])
def test_set_seeds_rejects_invalid(seed):
    with pytest.raises(ValueError, match="Received: seed="):
        set_seeds(seed)


def test_make_run_dir_cleanrl_name(tmp_path):
    now = datetime.datetime(2024, 1, 31, 23, 59, 59, tzinfo=datetime.UTC)
    path = make_run_dir(tmp_path / "runs", ["CartPole-v1", "ppo", 1], now=now)
    assert path == tmp_path / "runs" / "CartPole-v1__ppo__1__20240131-235959"
    assert path.is_dir() and not any(path.iterdir())
    again = make_run_dir(tmp_path / "runs", ["CartPole-v1", "ppo", 1], now=now)
    assert again.name == "CartPole-v1__ppo__1__20240131-235959-1"


def test_make_run_dir_uses_utc_now(tmp_path):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    path = make_run_dir(tmp_path, ["nmt", "exp", 7])
    after = datetime.datetime.now(datetime.UTC)
    match = re.fullmatch(r"nmt__exp__7__(\d{8}-\d{6})", path.name)
    assert match
    stamp = datetime.datetime.strptime(match[1], "%Y%m%d-%H%M%S").replace(tzinfo=datetime.UTC)
    assert before <= stamp <= after


@pytest.mark.parametrize("parts", [[], ["a", ""], ["a/b"]])
def test_make_run_dir_rejects_bad_parts(tmp_path, parts):
    with pytest.raises(ValueError, match="name_parts"):
        make_run_dir(tmp_path, parts)


def test_resolve_workdir(tmp_path):
    path = resolve_workdir(str(tmp_path / "a" / "b"))
    assert path.is_dir() and path.is_absolute()
    (path / "keep.txt").write_text("x")
    assert resolve_workdir(path) == path  # Reused, contents kept.
    assert (path / "keep.txt").read_text() == "x"
    with pytest.raises(ValueError, match="workdir"):
        resolve_workdir(path / "keep.txt")
    with pytest.raises(ValueError, match="workdir"):
        resolve_workdir("")
