r"""Runs every benchmark at a CPU-sized scale and writes BENCHMARKS.md.

    python -m benchmarks.run_all                     # every group, about 25 min on 2 cores
    python -m benchmarks.run_all --only=ppo,gan      # rerun some groups, keep the others' rows
    python -m benchmarks.run_all --rewrite           # only rebuild BENCHMARKS.md

Each group is one benchmark script run as a subprocess with `--json_out`; its rows (our
figure, the anchor's figure measured in the same run, the ratio) are kept in
`--root/<group>.json` with the command that reproduces them, and BENCHMARKS.md is rebuilt from
every group file under `--root`, so a partial rerun replaces only its own groups. The full
output of each script is in `--root/<group>.log`.

A ratio > 1 always means ours is better: ours / anchor for rates, anchor / ours for times
and memory.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads

import datetime  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import cli  # noqa: E402
from benchmarks.bench_utils import QUIET_ENV  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("root", "runs/run_all", "Where the groups' logs, JSON and model dirs go.")
flags.DEFINE_string("out", "BENCHMARKS.md", "The markdown file to write.")
flags.DEFINE_list("only", [], "Run only these groups (the others' rows are kept from --root).")
flags.DEFINE_bool("rewrite", False, "Run nothing: rebuild --out from the group files under "
                  "--root and benchmarks/long_runs.md.")

# Rows from trainings too long for run_all, with their commands; copied in as they are.
LONG_RUNS = pathlib.Path(__file__).resolve().parent / "long_runs.md"

# group -> (title, module, arguments). `{root}` becomes the group's own model directory.
GROUPS = {
    "layers": ("Attention layers against Keras' (B=32, T=128, D=256, H=8), forward + backward",
               "benchmarks.attention_bench", ["--steps=5", "--rounds=3"]),
    "layers_bf16": ("Our MHA in mixed_bfloat16 (compared with the float32 run of `layers`)",
                    "benchmarks.attention_bench",
                    ["--steps=5", "--rounds=3", "--precision=mixed_bfloat16", "--only=mha_self"]),
    "chunked": ("Chunked (online-softmax) MHA path against the plain path, B=1, H=8, D=512",
                "benchmarks.chunked_attention_bench", ["--lengths=1024,4096"]),
    "nmt_keras": ("NMT training against the TF tutorial's plain Keras encoder-decoder",
                  "benchmarks.translate_bench",
                  ["--suite=keras", "--speed_steps=150", "--root={root}"]),
    "nmt_speed": ("NMT training: XLA and mixed precision",
                  "benchmarks.translate_bench",
                  ["--suite=speed", "--speed_steps=200", "--root={root}"]),
    "ppo": ("PPO env-steps/s against Stable-Baselines3 (its own venv), CartPole-v1, 8 envs",
            "benchmarks.ppo_bench",
            ["--only=speed", "--speed_steps=100000", "--root={root}"]),
    "gan": ("SAGAN training images/s: mixed_bfloat16 against float32",
            "benchmarks.gan_bench", ["--suite=speed", "--root={root}"]),
}


def run_group(name, root):
    """Runs one group's script; saves and returns {title, command, rows, seconds, date}."""
    title, module, args = GROUPS[name]
    model_root = root / "models" / name
    shutil.rmtree(model_root, ignore_errors=True)  # fresh runs: the trainers would resume
    args = [a.replace("{root}", str(model_root)) for a in args]
    json_out = root / f"{name}.rows.json"
    json_out.unlink(missing_ok=True)
    command = " ".join(["python", "-m", module, *args])
    print(f"[{name}] $ {command}", flush=True)
    start = time.perf_counter()
    with open(root / f"{name}.log", "w") as log:
        result = subprocess.run([sys.executable, "-m", module, *args, f"--json_out={json_out}"],
                                env=QUIET_ENV, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if result.returncode or not json_out.exists():
        tail = (root / f"{name}.log").read_text()[-2000:]
        sys.exit(f"run_all: group {name!r} failed (exit {result.returncode}); "
                 f"see {root / (name + '.log')}:\n{tail}")
    group = {"title": title, "command": command, "rows": json.loads(json_out.read_text()),
             "seconds": seconds, "date": datetime.datetime.now().isoformat(timespec="minutes")}
    (root / f"{name}.json").write_text(json.dumps(group, indent=2) + "\n")
    print(f"[{name}] {len(group['rows'])} rows in {seconds / 60:.1f} min", flush=True)
    return group


def derived_rows(groups):
    """Rows that compare two groups: our MHA in mixed_bfloat16 against float32."""
    if "layers" not in groups or "layers_bf16" not in groups:
        return
    ours = {r["row"]: r for r in groups["layers"]["rows"]}
    for row in groups["layers_bf16"]["rows"]:
        if row["anchor_name"] != "Keras layer":
            continue
        f32 = ours.get(row["row"].replace("mixed_bfloat16", "float32"))
        if f32:
            groups["layers_bf16"]["rows"].append({
                "row": row["row"].replace("layer,", "layer (ours),").replace(
                    "mixed_bfloat16", "mixed_bfloat16 vs float32"),
                "ours": row["ours"], "anchor": f32["ours"], "unit": row["unit"],
                "anchor_name": "float32, group layers", "ratio": row["ours"] / f32["ours"]})


def machine():
    cpu = platform.processor() or "?"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf, keras; "
         "print(f'TensorFlow {tf.__version__}, Keras {keras.__version__}')"],
        env=QUIET_ENV, capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}"


def fmt(value):
    if value != value:  # NaN
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def write_markdown(groups, path):
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.run_all`; every figure below was measured by it, and",
        "each anchor in the same run as our figure. **ratio > 1 means ours is better** (ours /",
        "anchor for rates; anchor / ours for times and memory).",
        "",
        f"Machine: {machine()}. No GPU.",
        "",
    ]
    for name in GROUPS:
        group = groups.get(name)
        if group is None:
            continue
        lines += [f"## {group['title']}", "",
                  f"`{group['command']}` ({group['date']}, {group['seconds'] / 60:.1f} min)", "",
                  "| row | ours | anchor | unit | ratio |", "|---|---|---|---|---|"]
        for row in group["rows"]:
            lines.append(f"| {row['row']} | {fmt(row['ours'])} | {fmt(row['anchor'])} "
                         f"({row['anchor_name']}) | {row['unit']} | {row['ratio']:.2f} |")
        lines.append("")
    # Trainings of 10-30 minutes each are measured by their own bench commands, not here.
    long_runs = LONG_RUNS.read_text()
    lines += [long_runs[long_runs.index("-->") + 3:].strip(), ""]
    lines += [
        "## GPU",
        "",
        "No GPU machine was lent to the session that wrote this file, so there is no GPU table.",
        "On a GPU machine with TensorFlow, `python -m benchmarks.attention_bench` with",
        "`--precision=float32`, `mixed_bfloat16` and `mixed_float16` gives it.",
        "",
    ]
    pathlib.Path(path).write_text("\n".join(lines))


def main(argv):
    del argv  # cli.run refuses stray arguments
    unknown = sorted(set(FLAGS.only) - set(GROUPS))
    if unknown:
        cli.fail(f"Expected --only groups from {list(GROUPS)}. Received: {unknown}")
    if FLAGS.rewrite and FLAGS.only:
        # --rewrite runs nothing, so an --only beside it would be silently ignored.
        cli.fail(f"Expected --only or --rewrite, not both. Received: --rewrite "
                 f"--only={','.join(FLAGS.only)}")
    root = pathlib.Path(FLAGS.root)
    to_run = [] if FLAGS.rewrite else FLAGS.only or list(GROUPS)
    # A group whose rows --out shows but whose file is not under --root (a fresh clone, another
    # --root) would lose its rows in the rebuild: refuse before running anything.
    shown = pathlib.Path(FLAGS.out).read_text() if pathlib.Path(FLAGS.out).is_file() else ""
    saved = {name for name in GROUPS if (root / f"{name}.json").exists()}
    lost = [name for name, (title, _, _) in GROUPS.items()
            if name not in to_run and f"## {title}\n" in shown and name not in saved]
    if lost:
        cli.fail(f"{FLAGS.out} shows rows of {lost} and {root} has no results for them, so "
                 f"rebuilding it would drop them: run them too (--only={','.join(lost)}) or "
                 "set --root to where their files are")
    if FLAGS.rewrite and not saved:
        cli.fail(f"Expected group results (<group>.json) under --root to rebuild {FLAGS.out} "
                 f"from. Received: --root={root} holds none")
    root.mkdir(parents=True, exist_ok=True)
    for name in to_run:
        run_group(name, root)
    groups = {}
    for name in GROUPS:
        path = root / f"{name}.json"
        if path.exists():
            groups[name] = json.loads(path.read_text())
    derived_rows(groups)
    write_markdown(groups, FLAGS.out)
    print(f"wrote {FLAGS.out} ({sum(len(g['rows']) for g in groups.values())} rows)")


if __name__ == "__main__":
    cli.run(main)
