"""The command-line mistakes of gan.train: one line on stderr and exit status 2."""

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "empty").mkdir()
    cases = {
        "missing_folder": ["--dataset=folder:" + str(root / "nope")],
        "no_images": ["--dataset=folder:" + str(root / "empty")],
        "resolution": ["--resolution=48"],
        "unknown_dataset": ["--dataset=imagenet"],
        "bad_extractor": ["--fid_extractor=inception:" + str(root / "missing.h5"),
                          "--dataset=folder:" + str(root / "empty")],
        "batch_replicas": ["--strategy=mirrored", "--cpu_devices=2", "--batch_size=7"],
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gan.train", f"--model_dir={root / name}", "--steps=1",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, args in cases.items()
    }
    return {name: (p.wait(timeout=600), p.stderr.read()) for name, p in processes.items()}


@pytest.mark.parametrize("name, message", [
    ("missing_folder", "nope: no such folder"),
    ("no_images", "empty: no image files"),
    ("resolution", "Received: resolution=48"),
    ("unknown_dataset", "Received: dataset='imagenet'"),
    ("bad_extractor", "no image files"),
    ("batch_replicas", "multiple of the 2 replicas. Received: batch_size=7"),
])
def test_bad_input_is_one_line_and_exit_code_2(bad_runs, name, message):
    code, stderr = bad_runs[name]
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
