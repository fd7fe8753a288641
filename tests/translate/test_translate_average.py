"""Tests for checkpoint averaging (translate.checkpoint_average, `python -m
translate.average`, the tools' --average_last): golden weights, a directory every tool
loads, the trained directory left as it was, and the one-line errors."""

import hashlib
import json

import numpy as np
from translate_tools import run_tool

from attn_core.checkpoint import CheckpointManager
from translate import checkpoint_average
from translate.model_dir import load_trained


def _tree_hash(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _weights_of_step(model_dir, step):
    model = load_trained(model_dir)[0]
    CheckpointManager(model_dir / "checkpoints", read_only=True).restore({"model": model},
                                                                        step=step)
    return [v.numpy() for v in model.variables]


def test_average_writes_the_mean_weights_as_a_model_directory(tmp_path, trained_dir):
    """The tiny run keeps the checkpoints of steps 1 and 2."""
    before = _tree_hash(trained_dir)
    assert CheckpointManager(trained_dir / "checkpoints", read_only=True).steps == [1, 2]
    first, second = _weights_of_step(trained_dir, 1), _weights_of_step(trained_dir, 2)

    result = run_tool("translate.average", f"--model_dir={trained_dir}", "--last=2",
                      f"--output_dir={tmp_path}/avg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"averaged steps 1, 2 of {trained_dir} into "
                                     f"{tmp_path}/avg")
    model, _, _, step = load_trained(tmp_path / "avg")
    assert step == 2
    changed = 0
    for variable, a, b in zip(model.variables, first, second, strict=True):
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(variable.numpy(), (a + b) / 2, rtol=1e-6, atol=1e-7)
            changed += not np.array_equal(a, b)
        else:  # the seed generators' states: the newest
            np.testing.assert_array_equal(variable.numpy(), b)
    assert changed > 0  # the two steps' weights differ, so the mean is a real check
    record = json.loads((tmp_path / "avg" / "average.json").read_text())
    assert record == {"model_dir": str(trained_dir), "steps": [1, 2]}

    # One checkpoint: its weights exactly.
    model, steps = checkpoint_average.average_checkpoints(trained_dir, 1)
    assert steps == [2]
    for variable, b in zip(model.variables, second, strict=True):
        np.testing.assert_array_equal(variable.numpy(), b)

    # The averaged directory decodes like a trained one, as --average_last does in memory.
    (tmp_path / "src.txt").write_text("May 3, 1950\ntwelve\n", encoding="utf-8")
    by_dir = run_tool("translate.translate", f"--model_dir={tmp_path}/avg",
                      f"--input_file={tmp_path}/src.txt")
    in_memory = run_tool("translate.translate", f"--model_dir={trained_dir}",
                         "--average_last=2", f"--input_file={tmp_path}/src.txt")
    assert by_dir.returncode == 0 and in_memory.returncode == 0, by_dir.stderr
    assert by_dir.stdout == in_memory.stdout and len(by_dir.stdout.splitlines()) == 2
    assert _tree_hash(trained_dir) == before


def test_average_errors_are_one_line_before_writing(tmp_path, trained_dir):
    before = _tree_hash(trained_dir)
    run_tool("translate.average", f"--model_dir={trained_dir}", "--last=3",
             f"--output_dir={tmp_path}/avg").one_line_error(
        "--last=3 but", "holds 2 checkpoint(s) (steps 1, 2)")
    run_tool("translate.average", f"--model_dir={trained_dir}", "--last=1",
             f"--output_dir={trained_dir}/avg").one_line_error("outside --model_dir")
    run_tool("translate.average", f"--model_dir={trained_dir}", "--last=1",
             f"--output_dir={trained_dir}").one_line_error("outside --model_dir")
    run_tool("translate.average", f"--model_dir={trained_dir}",
             "--last=1").one_line_error("--output_dir")
    run_tool("translate.average", f"--model_dir={tmp_path}/typo", "--last=1",
             f"--output_dir={tmp_path}/avg").one_line_error("does not exist")
    assert not (tmp_path / "avg").exists()
    (tmp_path / "taken" / "checkpoints").mkdir(parents=True)
    run_tool("translate.average", f"--model_dir={trained_dir}", "--last=1",
             f"--output_dir={tmp_path}/taken").one_line_error("holds a model (checkpoints)")
    run_tool("translate.evaluate", f"--model_dir={trained_dir}", "--average_last=5",
             f"--src_file={tmp_path}/missing", f"--ref_file={tmp_path}/missing",
             ).one_line_error("--average_last=5 but")
    assert _tree_hash(trained_dir) == before
