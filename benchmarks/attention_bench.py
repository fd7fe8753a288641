r"""Our attention layers against the closest Keras layers, forward + backward.

Pairs, each timed with and without XLA, alternating ours and Keras' in one
process so that both see the same machine state:

- MHA self-attention: `attn_core.MultiHeadAttention` vs `keras.layers.MultiHeadAttention`.
- MHA cross-attention: the same pair with a separate memory.
- Luong dot: `attn_core.LuongAttention("dot")` vs `keras.layers.Attention()`.
- Bahdanau: `attn_core.BahdanauAttention` vs two `Dense` projections and
  `keras.layers.AdditiveAttention` (the nearest Keras gets to the same score).

It prints throughput (sequences/s), peak memory and the ratio ours/Keras per
row, and the GFLOP/s our MHA reaches as a share of a large `tf.matmul`
measured in the same run.

    python -m benchmarks.attention_bench            # B=32, T=128, D=256, H=8
    python -m benchmarks.attention_bench --precision=mixed_bfloat16
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

import attn_core  # noqa: E402
from attn_core import cli  # noqa: E402
from benchmarks.bench_utils import write_rows  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 32, "B, sequences per step.")
flags.DEFINE_integer("length", 128, "T = S, the sequence length.")
flags.DEFINE_integer("dim", 256, "D, the model size.")
flags.DEFINE_integer("heads", 8, "H, attention heads (key_dim = D / H).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement.")
flags.DEFINE_integer("rounds", 5, "Alternating rounds; the best round of each side is kept.")
flags.DEFINE_enum(
    "precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"], "Keras dtype policy."
)
flags.DEFINE_bool("fused_qkv", False, "Use our MHA's fused QKV projection for self-attention.")
flags.DEFINE_list("only", [], "Run only these rows (mha_self, mha_cross, luong_dot, bahdanau).")
flags.DEFINE_string("json_out", "", "Also write the rows as JSON here (for run_all).")


def _pairs(dim, heads, fused_qkv=False):
    """name -> (make_ours, make_keras, call(layer, q, v, mask) -> output)."""
    key_dim = dim // heads

    def mha_self(layer, q, v, m):
        return layer(q, q, query_mask=None, value_mask=m)

    def mha_cross(layer, q, v, m):
        return layer(q, v, value_mask=m)

    class KerasBahdanau(keras.layers.Layer):
        """Dense W_q, Dense W_k and AdditiveAttention: Keras' closest to Bahdanau."""

        def __init__(self, units):
            super().__init__()
            self.wq = keras.layers.Dense(units, use_bias=False)
            self.wk = keras.layers.Dense(units, use_bias=False)
            self.additive = keras.layers.AdditiveAttention()

        def call(self, q, v, m):
            return self.additive([self.wq(q), v, self.wk(v)], mask=[None, m])

    return {
        "mha_self": (
            lambda: attn_core.MultiHeadAttention(heads, key_dim, fused_qkv=fused_qkv),
            lambda: keras.layers.MultiHeadAttention(heads, key_dim),
            mha_self,
        ),
        "mha_cross": (
            lambda: attn_core.MultiHeadAttention(heads, key_dim),
            lambda: keras.layers.MultiHeadAttention(heads, key_dim),
            mha_cross,
        ),
        "luong_dot": (
            lambda: attn_core.LuongAttention("dot"),
            lambda: keras.layers.Attention(),
            lambda layer, q, v, m: (
                layer(q, v, value_mask=m)
                if isinstance(layer, attn_core.LuongAttention)
                else layer([q, v], mask=[None, m])
            ),
        ),
        "bahdanau": (
            lambda: attn_core.BahdanauAttention(dim),
            lambda: KerasBahdanau(dim),
            lambda layer, q, v, m: (
                layer(q, v, value_mask=m)
                if isinstance(layer, attn_core.BahdanauAttention)
                else layer(q, v, m)
            ),
        ),
    }


def _train_step(layer, call, jit):
    @tf.function(jit_compile=jit, reduce_retracing=True)
    def step(q, v, m):
        with tf.GradientTape() as tape:
            tape.watch([q, v])
            out = call(layer, q, v, m)
            loss = tf.reduce_sum(tf.square(tf.cast(out, tf.float32)))
        grads = tape.gradient(loss, [q, v] + layer.trainable_variables)
        return loss, grads

    return step


def _time(step, args, n):
    """Seconds for n steps, after the caller's warm-up; the loss is fetched to sync."""
    start = time.perf_counter()
    for _ in range(n):
        loss, _ = step(*args)
    float(loss)
    return time.perf_counter() - start


def _peak_bytes(step, args):
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    loss, _ = step(*args)
    float(loss)
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before


def _matmul_gflops(n=2048, reps=10):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            c = mm(a, b)
        c.numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * reps / best / 1e9


def _mha_flops(b, t, d, h):
    """Forward + backward FLOPs of one MHA self-attention step (backward = 2x forward)."""
    k = d // h
    proj = 2 * b * t * d * (3 * h * k) + 2 * b * t * h * k * d
    attn = 2 * (2 * b * h * t * t * k)
    return 3 * (proj + attn)


def main(argv):
    del argv  # cli.run refuses stray arguments
    keras.mixed_precision.set_global_policy(FLAGS.precision)
    b, t, d, h = FLAGS.batch, FLAGS.length, FLAGS.dim, FLAGS.heads
    rng = np.random.default_rng(0)
    dtype = keras.mixed_precision.global_policy().compute_dtype
    q = tf.constant(rng.normal(size=(b, t, d)), dtype=dtype)
    v = tf.constant(rng.normal(size=(b, t, d)), dtype=dtype)
    lengths = rng.integers(t // 2, t + 1, size=b)
    m = tf.constant(np.arange(t)[None, :] < lengths[:, None])
    args = (q, v, m)

    pairs = _pairs(d, h, FLAGS.fused_qkv)
    unknown = sorted(set(FLAGS.only) - set(pairs))
    if unknown:
        cli.fail(f"Expected --only rows from {sorted(pairs)}. Received: {unknown}")
    names = FLAGS.only or list(pairs)
    matmul = _matmul_gflops()
    print(f"B={b} T={t} D={d} H={h} precision={FLAGS.precision} "
          f"tf={tf.__version__} keras={keras.__version__}")
    print(f"large tf.matmul (2048^3, float32): {matmul:.1f} GFLOP/s\n")
    header = (f"{'row':<10} {'xla':<5} {'ours seq/s':>11} {'keras seq/s':>12} {'ratio':>6} "
              f"{'ours MiB':>9} {'keras MiB':>10}")
    print(header)
    print("-" * len(header))
    results = {}
    for name in names:
        make_ours, make_keras, call = pairs[name]
        for jit in (False, True):
            ours, theirs = make_ours(), make_keras()
            call(ours, *args)
            call(theirs, *args)
            if name.startswith("mha"):
                ours.set_weights(theirs.get_weights())
            steps = {"ours": _train_step(ours, call, jit), "keras": _train_step(theirs, call, jit)}
            for step in steps.values():  # compile and warm up
                _time(step, args, 2)
            best = {"ours": float("inf"), "keras": float("inf")}
            for _ in range(FLAGS.rounds):
                for side, step in steps.items():
                    best[side] = min(best[side], _time(step, args, FLAGS.steps))
            peak = {side: _peak_bytes(step, args) / 2**20 for side, step in steps.items()}
            rate = {side: b * FLAGS.steps / sec for side, sec in best.items()}
            ratio = rate["ours"] / rate["keras"]
            results[(name, jit)] = (rate, ratio)
            print(f"{name:<10} {str(jit):<5} {rate['ours']:>11.1f} {rate['keras']:>12.1f} "
                  f"{ratio:>5.2f}x {peak['ours']:>9.1f} {peak['keras']:>10.1f}")
    json_rows = []
    for (name, jit), (rate, _) in results.items():
        json_rows.append({"row": f"{name} layer, XLA {'on' if jit else 'off'}, {FLAGS.precision}",
                          "ours": rate["ours"], "anchor": rate["keras"], "unit": "seq/s",
                          "anchor_name": "Keras layer"})
    for name in names:
        if (name, True) in results:
            json_rows.append({"row": f"{name} layer (ours), XLA on vs off, {FLAGS.precision}",
                              "ours": results[(name, True)][0]["ours"],
                              "anchor": results[(name, False)][0]["ours"], "unit": "seq/s",
                              "anchor_name": "XLA off"})
    write_rows(FLAGS.json_out, json_rows)
    for jit in (False, True):
        if ("mha_self", jit) in results:
            rate, _ = results[("mha_self", jit)]
            gflops = _mha_flops(b, t, d, h) * rate["ours"] / b / 1e9
            print(f"\nMHA self-attention, xla={jit}: {gflops:.1f} GFLOP/s, "
                  f"{100 * gflops / matmul:.0f}% of the large matmul")


if __name__ == "__main__":
    cli.run(main)
