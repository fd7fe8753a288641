"""What every benchmark script shares: running a trainer as a subprocess, and a markdown table."""

import json
import os
import pathlib
import subprocess
import sys
import time

QUIET_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def run_module(name, module, model_dir, args):
    """Runs `python -m module --model_dir=... *args`; returns its metrics.json (+ wall_minutes).

    Exits with the tail of the run's stderr when it fails.
    """
    model_dir = pathlib.Path(model_dir)
    cmd = [sys.executable, "-m", module, f"--model_dir={model_dir}", *args]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    result = subprocess.run(cmd, env=QUIET_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    metrics["wall_minutes"] = (time.perf_counter() - start) / 60
    return metrics


def print_table(rows, columns, float_format="{:.2f}"):
    """Prints `rows` under `columns` as a markdown table; floats go through `float_format`."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [float_format.format(v) if isinstance(v, float) else str(v) for v in row]
        print("| " + " | ".join(cells) + " |")
