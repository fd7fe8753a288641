r"""Memory and speed of attn_core.MultiHeadAttention's chunked path against its plain path.

    python -m benchmarks.chunked_attention_bench            # the issue's table
    python -m benchmarks.chunked_attention_bench --lengths=1024,4096 --paths=plain,chunked

Each row is a fresh process (so its peak resident memory is its own) that runs
forward + backward of a self-attention layer, B=1, H=8, D=512 (key_dim 64), in
a tf.function, and reports the peak RSS (ru_maxrss) and the median step time.
Targets: the chunked path at T=16384 under 4 GiB; at T=1024 no slower than
1.5x the plain path.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

from benchmarks.bench_utils import write_rows

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["1024", "4096", "8192", "16384"], "Sequence lengths T.")
flags.DEFINE_list("paths", ["plain", "chunked"], "Which paths to run.")
flags.DEFINE_integer("plain_max_length", 8192,
                     "Longest T for the plain path (16384 needs tens of GiB; it is estimated).")
flags.DEFINE_integer("chunk_size", 512, "Keys per block on the chunked path.")
flags.DEFINE_integer("steps", 3, "Timed steps per row (after one warm-up step).")
flags.DEFINE_string("json_out", "", "Also write the chunked-vs-plain rows as JSON (run_all).")
flags.DEFINE_string("_child", None, "Internal: run one measurement, as 'path,T'.")

HEADS, MODEL_DIM = 8, 512
GIB = 1024**3


def child(path, length):
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

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x)))
        return tape.gradient(loss, [x] + layer.trainable_variables)

    grads = step(x)  # warm-up (tracing)
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        grads = step(x)
        float(tf.reduce_sum(grads[0]))
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"path": path, "T": length, "seconds": float(np.median(times)),
                      "peak_gib": peak / GIB}))


def measure(path, length):
    cmd = [sys.executable, "-m", "benchmarks.chunked_attention_bench",
           f"--_child={path},{length}", f"--chunk_size={FLAGS.chunk_size}",
           f"--steps={FLAGS.steps}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode:
        return {"path": path, "T": length, "error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def plain_estimate_gib(length):
    """The plain path's float32 [B, N, T, T] tensors alone: scores, weights, and their grads."""
    return 4 * HEADS * length * length * 4 / GIB


def main(argv):
    del argv
    if FLAGS._child:
        path, length = FLAGS._child.split(",")
        child(path, int(length))
        return
    rows = {}
    for length in map(int, FLAGS.lengths):
        for path in FLAGS.paths:
            if path == "plain" and length > FLAGS.plain_max_length:
                continue
            row = measure(path, length)
            rows[path, length] = row
            print(json.dumps(row), flush=True)
    print(f"\nB=1, H={HEADS}, D={MODEL_DIM}, forward + backward, float32, "
          f"chunk_size={FLAGS.chunk_size}, {os.cpu_count()} CPU cores")
    print("| T | path | step s | peak RSS GiB | note |")
    print("|---|---|---|---|---|")
    for length in map(int, FLAGS.lengths):
        for path in FLAGS.paths:
            row = rows.get((path, length))
            if row is None:
                print(f"| {length} | {path} | - | - | not run: the [T, T] tensors alone "
                      f"would take {plain_estimate_gib(length):.0f} GiB |")
            elif "error" in row:
                print(f"| {length} | {path} | - | - | failed: {row['error']} |")
            else:
                note = ""
                if path == "chunked" and length == 16384:
                    note = f"target < 4 GiB: {'met' if row['peak_gib'] < 4 else 'MISSED'}"
                plain = rows.get(("plain", length))
                if path == "chunked" and plain and "seconds" in plain:
                    ratio = row["seconds"] / plain["seconds"]
                    note += f" time / plain = {ratio:.2f}x"
                    if length == 1024:
                        note += f" (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})"
                print(f"| {length} | {path} | {row['seconds']:.3f} | {row['peak_gib']:.2f} | "
                      f"{note.strip()} |")
    json_rows = []
    for length in map(int, FLAGS.lengths):
        ours, plain = rows.get(("chunked", length), {}), rows.get(("plain", length), {})
        if "seconds" in ours and "seconds" in plain:
            json_rows += [
                {"row": f"chunked vs plain MHA path, T={length}, step time", "unit": "s",
                 "ours": ours["seconds"], "anchor": plain["seconds"], "lower_is_better": True,
                 "anchor_name": "plain path"},
                {"row": f"chunked vs plain MHA path, T={length}, peak RSS", "unit": "GiB",
                 "ours": ours["peak_gib"], "anchor": plain["peak_gib"], "lower_is_better": True,
                 "anchor_name": "plain path"}]
    write_rows(FLAGS.json_out, json_rows)


if __name__ == "__main__":
    app.run(main)
