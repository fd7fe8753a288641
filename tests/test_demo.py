"""The demo entry point end to end, on a shrunk config."""

import json
import os
import subprocess
import sys

import pytest


def _run(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "attn_core.demo", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def test_demo_writes_heatmap_events_and_metrics(tmp_path):
    workdir = tmp_path / "run"
    result = _run(f"--model_dir={workdir}", "--epochs=1", "--train_size=256", "--units=16",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    png = (workdir / "attention_heatmap.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert list(workdir.glob("events.out.tfevents.*"))
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert 0.0 <= metrics["eval/token_accuracy"] <= 1.0
    assert metrics["attention"] == "luong"


@pytest.mark.parametrize(
    "flag, message",
    [("--attention=dot", "--attention"), ("--epochs=0", "--epochs"), ("stray", "stray"),
     ("--model_dir=demo.py/x", "is a file")],
)
def test_bad_input_is_one_line_error(tmp_path, flag, message):
    (tmp_path / "demo.py").write_text("")
    result = _run(flag, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()
