r"""Memory and speed of attn_core.MultiHeadAttention's chunked path against its plain path.

    python -m benchmarks.chunked_attention_bench            # the issue's table, both modes
    python -m benchmarks.chunked_attention_bench --lengths=1024,4096 --paths=plain,chunked
    python -m benchmarks.chunked_attention_bench --modes=eager --paths=chunked

Each row is a fresh process (so its peak resident memory is its own) that runs
forward + backward of a self-attention layer, B=1, H=8, D=512 (key_dim 64),
under a tf.GradientTape, and reports the peak RSS (ru_maxrss) and the median
step time. Two modes: `function` traces the step into a tf.function; `eager`
runs it op by op, where the tape records what the forward pass executes (the
case the chunked path's custom gradient must keep out of the tape).
Targets: the chunked path at T=16384 under 4 GiB in both modes; at T=1024 no
slower than 1.5x the plain path (in a tf.function).

A row whose process grows past --max_rss_gib is killed (so a regression cannot
take the machine's memory) and reported as such.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads

import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import cli  # noqa: E402
from benchmarks.bench_utils import write_rows  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["1024", "4096", "8192", "16384"], "Sequence lengths T.")
flags.DEFINE_list("paths", ["plain", "chunked"], "Which paths to run.")
flags.DEFINE_list("modes", ["function", "eager"],
                  "How the step runs: `function` (tf.function) and/or `eager`.")
flags.DEFINE_integer("plain_max_length", 4096,
                     "Longest T for the plain path (longer ones are estimated, not run).")
flags.DEFINE_integer("chunk_size", 512, "Keys per block on the chunked path.")
flags.DEFINE_integer("steps", 3, "Timed steps per row (after one warm-up step).")
flags.DEFINE_float("max_rss_gib", 10.0, "Kill a row's process when its RSS passes this.")
flags.DEFINE_string("json_out", "", "Also write the chunked-vs-plain rows as JSON (run_all).")
flags.DEFINE_string("_child", None, "Internal: run one measurement, as 'path,T,mode'.")

HEADS, MODEL_DIM = 8, 512
GIB = 1024**3
TARGET_GIB, TARGET_LENGTH = 4, 16384


def child(path, length, mode):
    """Runs one measurement in this process and prints it as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    import attn_core

    layer = attn_core.MultiHeadAttention(HEADS, MODEL_DIM // HEADS,
                                         chunked_attention=path == "chunked",
                                         chunk_size=FLAGS.chunk_size)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, length, MODEL_DIM)), tf.float32)
    layer(x[:, :8])

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, [x] + layer.trainable_variables)

    if mode == "function":
        step = tf.function(step)
    elif mode != "eager":
        raise ValueError(f"Expected a mode in (function, eager). Received: mode={mode!r}")

    grads = step(x)  # warm-up (tracing, in a tf.function)
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        grads = step(x)
        float(tf.reduce_sum(grads[0]))
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"path": path, "T": length, "mode": mode,
                      "seconds": float(np.median(times)), "peak_gib": peak / GIB}))


def _rss_bytes(pid):
    """The current resident memory of process `pid` (Linux /proc), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def measure(path, length, mode):
    """Runs one row in a fresh process, killing it above --max_rss_gib; returns its dict."""
    cmd = [sys.executable, "-m", "benchmarks.chunked_attention_bench",
           f"--_child={path},{length},{mode}", f"--chunk_size={FLAGS.chunk_size}",
           f"--steps={FLAGS.steps}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    row = {"path": path, "T": length, "mode": mode}
    start = time.perf_counter()
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        killed = False
        while proc.poll() is None:
            if _rss_bytes(proc.pid) > FLAGS.max_rss_gib * GIB:
                proc.kill()
                killed = True
                break
            time.sleep(0.05)
        stdout, stderr = proc.communicate()
    row["wall_s"] = time.perf_counter() - start
    if killed:
        return {**row, "error": f"killed: RSS passed {FLAGS.max_rss_gib:g} GiB"}
    if proc.returncode:
        return {**row, "error": " ".join(stderr.strip().splitlines()[-1:])
                or f"exit {proc.returncode}"}
    return {**row, **json.loads(stdout.strip().splitlines()[-1])}


def plain_estimate_gib(length):
    """The plain path's float32 [B, N, T, T] tensors alone: scores, weights, and their grads."""
    return 4 * HEADS * length * length * 4 / GIB


def main(argv):
    del argv
    if FLAGS._child:
        path, length, mode = FLAGS._child.split(",")
        child(path, int(length), mode)
        return
    if not all(v.isdigit() and int(v) > 0 for v in FLAGS.lengths):
        cli.fail(f"Expected --lengths of positive integers. Received: {FLAGS.lengths}")
    lengths = list(map(int, FLAGS.lengths))
    rows = {}
    start = time.perf_counter()
    for length in lengths:
        for mode in FLAGS.modes:
            for path in FLAGS.paths:
                if path == "plain" and length > FLAGS.plain_max_length:
                    continue
                row = measure(path, length, mode)
                rows[path, length, mode] = row
                print(json.dumps(row), flush=True)
    print(f"\nB=1, H={HEADS}, D={MODEL_DIM}, forward + backward under a GradientTape, float32, "
          f"chunk_size={FLAGS.chunk_size}, {os.cpu_count()} CPU cores, "
          f"{(time.perf_counter() - start) / 60:.1f} min in all")
    print("| T | mode | path | step s | peak RSS GiB | note |")
    print("|---|---|---|---|---|---|")
    for length in lengths:
        for mode in FLAGS.modes:
            for path in FLAGS.paths:
                row = rows.get((path, length, mode))
                if row is None:
                    print(f"| {length} | {mode} | {path} | - | - | not run: the [T, T] tensors "
                          f"alone would take {plain_estimate_gib(length):.0f} GiB |")
                    continue
                note = ""
                if path == "chunked" and length == TARGET_LENGTH:
                    met = "peak_gib" in row and row["peak_gib"] < TARGET_GIB
                    note = f"target < {TARGET_GIB} GiB: {'met' if met else 'MISSED'}"
                if "error" in row:
                    print(f"| {length} | {mode} | {path} | - | - | "
                          f"{(note + '; ' if note else '')}failed: {row['error']} |")
                    continue
                plain = rows.get(("plain", length, mode))
                if path == "chunked" and plain and "seconds" in plain:
                    ratio = row["seconds"] / plain["seconds"]
                    note += f" time / plain = {ratio:.2f}x"
                    if length == 1024 and mode == "function":
                        note += f" (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})"
                print(f"| {length} | {mode} | {path} | {row['seconds']:.3f} | "
                      f"{row['peak_gib']:.2f} | {note.strip()} |")
    json_rows = []
    for length in lengths:
        for mode in FLAGS.modes:
            ours = rows.get(("chunked", length, mode), {})
            plain = rows.get(("plain", length, mode), {})
            if "seconds" not in ours or "seconds" not in plain:
                continue
            # The tf.function rows keep their historical names (BENCHMARKS.md compares them).
            label = f"T={length}" if mode == "function" else f"eager, T={length}"
            json_rows += [
                {"row": f"chunked vs plain MHA path, {label}, step time", "unit": "s",
                 "ours": ours["seconds"], "anchor": plain["seconds"], "lower_is_better": True,
                 "anchor_name": "plain path"},
                {"row": f"chunked vs plain MHA path, {label}, peak RSS", "unit": "GiB",
                 "ours": ours["peak_gib"], "anchor": plain["peak_gib"], "lower_is_better": True,
                 "anchor_name": "plain path"}]
    write_rows(FLAGS.json_out, json_rows)


if __name__ == "__main__":
    cli.run(main)
