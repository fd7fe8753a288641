"""Tests for attn_core.model_dir: validation before writing, resume rules, the lock."""

import datetime
import hashlib
import os
import subprocess
import sys

import pytest

from attn_core import model_dir
from attn_core.errors import UserError


def _snapshot(root):
    """{relative path: sha256} of every file under `root`."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_resolve_names_a_fresh_directory_without_creating_it(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    path = model_dir.resolve(None, ["spa.txt", "rnn", 1], root=tmp_path / "runs", now=now)
    assert path == tmp_path / "runs" / "spa.txt__rnn__1__20260102-030405"
    assert not path.exists() and not (tmp_path / "runs").exists()
    path.mkdir(parents=True)
    again = model_dir.resolve(None, ["spa.txt", "rnn", 1], root=tmp_path / "runs", now=now)
    assert again.name.endswith("-1")


def test_resolve_refuses_a_path_through_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    for bad in ("f", "f/sub"):
        with pytest.raises(UserError, match="--model_dir=.*is a file") as info:
            model_dir.resolve(tmp_path / bad)
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="non-empty"):
        model_dir.resolve("")


def test_reconcile_config_new_run_saved_wins_and_conflicts():
    given = {"units": 64, "layers": 2, "max_steps": 100, "vocab": 50}
    assert model_dir.reconcile_config(None, given, {"units"}) == given
    saved = {"units": 32, "layers": 2, "max_steps": 10, "vocab": 40}
    # Not given explicitly: the saved values win, derived values (vocab) too.
    assert model_dir.reconcile_config(saved, given, set(), {"max_steps"}) == saved
    lines = []
    merged = model_dir.reconcile_config(saved, given, {"max_steps"}, {"max_steps"},
                                        log=lines.append)
    assert merged == {**saved, "max_steps": 100}
    assert lines == ["resuming with --max_steps=100 (was 10)"]
    with pytest.raises(UserError) as info:
        model_dir.reconcile_config(saved | {"layers": 3}, given, {"units", "layers"},
                                   where="runs/m")
    message = str(info.value)
    assert "--units (saved 32, given 64)" in message and "--layers (saved 3, given 2)" in message
    assert message.startswith("runs/m holds a model with other settings")


def test_open_creates_locks_and_cleans(tmp_path):
    path = tmp_path / "m"
    with model_dir.ModelDir.open(path) as run_dir:
        assert run_dir.created and (path / ".lock").is_file()
        assert f"PID {os.getpid()}" in (path / ".lock").read_text()
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / ".ckpt-1.npz.x.tmp").write_text("partial")
        (path / ".metrics.json.y.tmp").write_text("partial")
        (path / "checkpoints" / "ckpt-00000001.npz").write_text("kept")
    assert not (path / ".lock").exists()
    with model_dir.ModelDir.open(path) as run_dir:
        assert not run_dir.created
        assert sorted(p.name for p in path.rglob("*")) == [
            ".lock", "checkpoints", "ckpt-00000001.npz"]


def test_a_failed_run_without_checkpoint_leaves_no_directory(tmp_path):
    path = tmp_path / "new"
    with pytest.raises(UserError):
        with model_dir.ModelDir.open(path):
            (path / "model_config.json").write_text("{}")
            raise UserError("bad corpus")
    assert not path.exists()
    existing = tmp_path / "old"
    existing.mkdir()
    with pytest.raises(UserError):
        with model_dir.ModelDir.open(existing):
            raise UserError("bad corpus")
    assert existing.is_dir()  # not ours to remove


def test_a_second_process_fails_at_once_naming_the_holder(tmp_path):
    path = tmp_path / "m"
    with model_dir.ModelDir.open(path):
        before = _snapshot(path)
        code = ("import sys; from attn_core.model_dir import ModelDir\n"
                "from attn_core.errors import UserError\n"
                "try:\n    ModelDir.open(sys.argv[1])\n"
                "except UserError as e:\n    print(e); sys.exit(2)\n")
        env = {**os.environ, "KERAS_BACKEND": "numpy"}
        result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                text=True, env=env, timeout=120)
        assert result.returncode == 2, result.stderr
        assert f"in use by PID {os.getpid()} on host" in result.stdout
        assert _snapshot(path) == before
    # The holder is gone: the lock is free again (a killed holder's lock dies with it).
    model_dir.ModelDir.open(path).close()


def test_output_paths_are_checked_and_their_folders_created(tmp_path):
    out = model_dir.prepare_output_file(tmp_path / "a" / "b" / "out.txt", "--output_file")
    assert out.parent.is_dir() and not out.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="--output_file"):
        model_dir.prepare_output_file(tmp_path / "file" / "out.txt", "--output_file")
    with pytest.raises(UserError, match="is a directory"):
        model_dir.prepare_output_file(tmp_path / "a", "--output_file")
    assert model_dir.prepare_output_dir(tmp_path / "plots" / "x", "--plot_dir").is_dir()
    # A file that must go into an existing folder: nothing is created.
    assert model_dir.prepare_output_file(tmp_path / "a" / "x.json", "--attention_json",
                                         create_folder=False) == tmp_path / "a" / "x.json"
    with pytest.raises(UserError, match=r"Expected the folder of --attention_json=.*new/x.json "
                                        r"to exist"):
        model_dir.prepare_output_file(tmp_path / "new" / "x.json", "--attention_json",
                                      create_folder=False)
    with pytest.raises(UserError, match="is a file"):
        model_dir.prepare_output_file(tmp_path / "file" / "x.json", "--attention_json",
                                      create_folder=False)
    assert not (tmp_path / "new").exists()
    with pytest.raises(UserError, match="--export_dir"):
        model_dir.prepare_output_dir(tmp_path / "file", "--export_dir")


def test_require_existing_and_json_helpers(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        model_dir.require_existing(tmp_path / "typo")
    with pytest.raises(UserError, match="has no model_config.json"):
        model_dir.require_existing(tmp_path, marker="model_config.json")
    model_dir.write_json(tmp_path / "model_config.json", {"b": 1, "a": [1, 2]})
    assert model_dir.require_existing(tmp_path, marker="model_config.json") == tmp_path
    assert model_dir.read_json(tmp_path / "model_config.json") == {"a": [1, 2], "b": 1}
    assert model_dir.read_json(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="bad.json"):
        model_dir.read_json(tmp_path / "bad.json", "model config")
    assert model_dir.fingerprint("a", [1]) == model_dir.fingerprint("a", [1])
    assert model_dir.fingerprint("a", [1]) != model_dir.fingerprint("a", [2])
