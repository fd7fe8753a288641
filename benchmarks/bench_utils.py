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


def write_rows(path, rows):
    """Writes comparison rows as JSON for `benchmarks.run_all` (nothing when `path` is empty).

    Args:
        path: The `--json_out` file, or "" / None.
        rows: Dicts with `row` (name), `ours`, `anchor` (figures measured in the same run),
            `unit`, `anchor_name` and optionally `lower_is_better` (memory, seconds). The
            `ratio` is added so that > 1 always means ours is better: ours / anchor, or
            anchor / ours when lower is better.
    """
    if not path:
        return
    out = []
    for row in rows:
        row = dict(row)
        num, den = ((row["anchor"], row["ours"]) if row.get("lower_is_better")
                    else (row["ours"], row["anchor"]))
        row["ratio"] = num / den if den else float("nan")
        out.append(row)
    pathlib.Path(path).write_text(json.dumps(out, indent=2) + "\n")
