r"""Where the PPO update of the memory policy spends its time under XLA, op by op.

    python -m benchmarks.profile_ppo_update
    python -m benchmarks.profile_ppo_update --profile_updates=5 --train_flags=--seed=2

The trainer is built in this process with the settings of `benchmarks.ppo_bench`'s recurrent
row (`RECURRENT_ARGS`: CartPole without velocities, `--memory=8`, a 32-wide policy, the
zoo's 8 envs x 32 steps and 20 epochs of one 256-step minibatch; the update is one
XLA-compiled graph). `--train_flags` adds or overrides `attn_agents.train` flags. The
script drives the trainer's own phases (setup, build, one `_update` per rollout), so the
update profiled is the one a training run makes:

1. `--warmup_updates` updates compile the policy step and the update;
2. `--timed_updates` updates are timed as `metrics.json` splits them (rollout, update), the
   rollout further into the policy calls, the environments' steps and the rest;
3. the last rollout's update is repeated `--profile_updates` times under the TensorFlow
   profiler, with XLA's per-op trace events on (`--xla_cpu_enable_xprof_traceme`) and the
   update's optimized HLO dumped (`--xla_dump_to`). The trace's events are turned into
   self times (an event's duration less its children's on the same thread), and each HLO
   op is put into a part of the update (tokenizer, token attention, memory, heads,
   the loss, the optimizer, the minibatch gather, ...) by the TensorFlow ops it was
   lowered from (the HLO metadata's `op_name`; a fusion's time is split between the parts
   of its ops, by their count).

It prints the ms per update, the parts of the update, the top ops by self time and the
rollout's per-step split. The trace and the HLO stay in `--profile_dir`.
"""

import os
import sys

PROFILE_DIR_DEFAULT = "runs/profile_ppo_update"


def _xla_flags(argv):
    """XLA's per-op trace events and the dump of the update's HLO, set before TensorFlow
    starts (XLA reads `XLA_FLAGS` once)."""
    profile_dir = PROFILE_DIR_DEFAULT
    for arg in argv:
        if arg.startswith("--profile_dir="):
            profile_dir = arg.split("=", 1)[1]
    hlo_dir = os.path.join(os.path.abspath(profile_dir), "hlo")
    return " ".join([os.environ.get("XLA_FLAGS", ""), "--xla_cpu_enable_xprof_traceme=true",
                     f"--xla_dump_to={hlo_dir}", "--xla_dump_hlo_as_text",
                     ]).strip()


if __name__ == "__main__":
    os.environ["XLA_FLAGS"] = _xla_flags(sys.argv[1:])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import collections  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from attn_core import cli  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from benchmarks.bench_utils import print_table  # noqa: E402
from benchmarks.ppo_bench import RECURRENT_ARGS  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("train_flags", [], "attn_agents.train flags added to (or overriding) "
                  "RECURRENT_ARGS, e.g. --train_flags=--seed=2,--nojit_compile.")
flags.DEFINE_integer("warmup_updates", 3, "Updates before any timing (compilation).",
                     lower_bound=1)
flags.DEFINE_integer("timed_updates", 20, "Updates timed as metrics.json splits them.",
                     lower_bound=1)
flags.DEFINE_integer("profile_updates", 5, "Repeats of one update under the profiler.",
                     lower_bound=1)
flags.DEFINE_integer("top", 15, "Ops shown by self time.", lower_bound=1)
flags.DEFINE_string("profile_dir", PROFILE_DIR_DEFAULT,
                    "Where the trace (plugins/profile/) and the update's HLO (hlo/) go; "
                    "emptied first.")

# Parts of the update, from the TensorFlow op names an HLO op was lowered from (first match
# wins). Names inside the update's loop carry Keras' "_1" suffixes ("while/memory_1/..."), and
# an HLO op without metadata is named by its reduction's computation, with "_" for "/": the
# patterns accept both. "gradient_tape" in front marks the backward pass of the same part.
_SEP = r"(^|[/_])"
PARTS = (
    ("minibatch gather", _SEP + "minibatch_gather"),
    ("memory windows (gather)", _SEP + "memory_windows"),
    ("optimizer (Adam, clipping)", _SEP + r"adam([/_]|$)"),
    ("tokenizer", _SEP + r"tokenizer([/_]|$)"),
    ("token attention (block_*)", _SEP + r"block_\d+"),
    ("pooling", _SEP + r"pooling([/_]|$)"),
    ("temporal memory", _SEP + r"memory([/_]|$)"),
    ("heads", _SEP + r"(actor|critic)_(hidden|out)"),
    ("distribution and loss", _SEP + r"(ppo_loss|Categorical)([/_]|$)"),
    ("arguments", r"^XLA_Args"),
)
# Events that wait rather than work: the Python thread blocks in them until the update ends.
WAITS = ("BlockUntilReady",)


def _train_flag_values(args):
    """`attn_agents.train`'s flags parsed from `args`, in their own FlagValues."""
    from attn_agents import train

    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    cli.parse_flags(["profile_ppo_update", *args], flag_values)
    return flag_values


def _build_trainer(args, model_dir):
    """A `PPOTrainer` with the settings `args`, set up and at the start of its loop.

    Drives the trainer's own phases (`_validate`, `_build`, `_start_loop`) so that the
    update profiled is exactly the one training compiles; `model_dir` gets only the
    TensorBoard events of the updates run here.
    """
    from attn_agents.env_config import EnvConfig
    from attn_agents.policy_config import PolicyConfig
    from attn_agents.ppo_config import PPOConfig
    from attn_agents.ppo_trainer import PPOTrainer
    from attn_core import flags as common_flags

    flag_values = _train_flag_values(args)
    try:
        configs = [common_flags.config_from_flags(cls, flag_values)
                   for cls in (EnvConfig, PolicyConfig, PPOConfig)]
    except ValueError as error:
        raise UserError(str(error)) from None
    common = common_flags.common_config_from_flags(flag_values)
    trainer = PPOTrainer(*configs, common, model_dir, log=lambda _: None, verbose=0)
    trainer._validate()
    trainer._build()
    trainer.rng = np.random.default_rng(common.seed)
    trainer._start_loop()
    return trainer


class _Timer:
    """Wraps a callable (an instance attribute) and adds up the seconds of its calls."""

    def __init__(self, owner, name):
        self.seconds, self.calls = 0.0, 0
        self._inner = getattr(owner, name)
        setattr(owner, name, self)

    def __call__(self, *args, **kwargs):
        begin = time.perf_counter()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - begin
            self.calls += 1


def _timed_updates(trainer, count):
    """Runs `count` updates; returns ms per update of each phase and the last update's
    inputs `(data, orders)`."""
    state, rollout = trainer.state, trainer.rollout
    timers = {"policy calls": _Timer(rollout.agent, "act"),
              "environment steps": _Timer(rollout.envs, "step"),
              "observation normalization": _Timer(rollout, "observe")}
    update = _Timer(trainer, "update_fn")
    last = {}
    inner_update = update._inner

    def keep_inputs(data, orders):
        last["args"] = (data, orders)
        return inner_update(data, orders)

    update._inner = keep_inputs
    before = (state.rollout_seconds, state.update_seconds, state.train_seconds)
    for _ in range(count):
        trainer._update()
    rollout_s, update_s, train_s = (a - b for a, b in zip(
        (state.rollout_seconds, state.update_seconds, state.train_seconds), before,
        strict=True))
    ms = {"rollout": rollout_s, "update": update_s,
          "rest (summaries, bookkeeping)": train_s - rollout_s - update_s}
    ms = {k: v * 1e3 / count for k, v in ms.items()}
    split = {k: t.seconds * 1e3 / count for k, t in timers.items()}
    split["rest (GAE, buffers, training tensors, shuffle)"] = ms["rollout"] - sum(split.values())
    calls = {k: t.calls / count for k, t in timers.items()}
    return ms, split, calls, last["args"]


def _profile(update_fn, data, orders, count, logdir):
    """Runs the update `count` times under the profiler; returns the ms of each call."""
    import tensorflow as tf

    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2,
                                                       python_tracer_level=0,
                                                       device_tracer_level=1)
    wall = []
    tf.profiler.experimental.start(str(logdir), options=options)
    try:
        for _ in range(count):
            begin = time.perf_counter()
            _, epochs = update_fn(data, orders)
            int(epochs)  # waits for the result
            wall.append((time.perf_counter() - begin) * 1e3)
    finally:
        tf.profiler.experimental.stop()
    return wall


# ---- the trace: self times per event --------------------------------------------------------

def _xspace(logdir):
    """The newest trace's XSpace under `logdir/plugins/profile/`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(pathlib.Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
    if not files:
        raise UserError(f"Expected a trace under {logdir}/plugins/profile/. Received: none")
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    return space


def self_times(space):
    """Self time of every host event, by name.

    Events of one thread (an XLine) nest: an event's self time is its duration less the
    durations of the events directly inside it.

    Returns:
        name -> [total self time in ps, occurrences].
    """
    out = collections.defaultdict(lambda: [0, 0])
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        names = {i: (m.display_name or m.name) for i, m in plane.event_metadata.items()}
        for line in plane.lines:
            stack = []  # [end ps, name, self ps]: the open events, innermost last
            for event in sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps)):
                while stack and stack[-1][0] <= event.offset_ps:
                    _, name, own = stack.pop()
                    out[name][0] += own
                    out[name][1] += 1
                if stack:
                    stack[-1][2] -= event.duration_ps
                stack.append([event.offset_ps + event.duration_ps,
                              names.get(event.metadata_id, "?"), event.duration_ps])
            for _, name, own in stack:
                out[name][0] += own
                out[name][1] += 1
    return dict(out)


# ---- the HLO: which TensorFlow ops each HLO op comes from ----------------------------------

_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"\s([a-z][a-z0-9\-]*)\(")
_CALLS = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)="
                    r"\{?([%\w.\-, ]+)\}?")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def hlo_ops(hlo_dir):
    """The update's optimized HLO: op name -> (opcode, [TensorFlow op names]).

    A fusion's (or a call's) TensorFlow ops are those of every op inside it.
    """
    files = sorted(pathlib.Path(hlo_dir).glob("*after_optimizations.txt"),
                   key=lambda p: p.stat().st_size)
    if not files:
        raise UserError(f"Expected the update's HLO in {hlo_dir}. Received: none (is "
                        "XLA_FLAGS set before TensorFlow starts?)")
    computations, current = {}, None
    for line in files[-1].read_text().splitlines():
        header = _COMPUTATION.match(line)
        if header and " = " not in line:
            current = computations.setdefault(header.group(2), [])
            continue
        match = _INSTRUCTION.match(line)
        if match is None or current is None:
            continue
        name, rest = match.groups()
        opcode = _OPCODE.search(" " + rest.split(", metadata=")[0])
        called = [c.strip().lstrip("%") for group in _CALLS.findall(rest)
                  for c in group.split(",") if c.strip()]
        current.append((name, opcode.group(1) if opcode else "?", _OP_NAME.findall(rest),
                        called))

    def tf_ops(computation, seen):
        # A reduction's computation is named after its TensorFlow op (the reduce itself
        # may carry no metadata).
        found = [computation.split("-reduction")[0]] if "-reduction" in computation else []
        for _, _, names, called in computations.get(computation, []):
            found += names
            for c in called:
                if c not in seen:
                    found += tf_ops(c, seen | {c})
        return found

    ops = {}
    for instructions in computations.values():
        for name, opcode, names, called in instructions:
            inner = []
            if opcode not in ("while", "conditional"):  # their bodies' ops have own events
                for c in called:
                    inner += tf_ops(c, {c})
            ops[name] = (opcode, names + inner)
    return ops


def part_of(tf_op_name):
    """The part of the update a TensorFlow op belongs to (see PARTS), with its direction."""
    backward = tf_op_name.startswith("gradient_tape")
    name = tf_op_name.removeprefix("gradient_tape")
    for part, pattern in PARTS:
        if re.search(pattern, name):
            return part, backward
    return "other", backward


def _shares(tf_names):
    """{(part, backward): share} of an HLO op's TensorFlow ops, by count."""
    if not tf_names:
        return {("no TensorFlow op (XLA's own)", False): 1.0}
    counts = collections.Counter(part_of(n) for n in tf_names)
    return {key: c / len(tf_names) for key, c in counts.items()}


def main(argv):
    del argv  # cli.run refuses stray arguments
    profile_dir = pathlib.Path(FLAGS.profile_dir)
    if profile_dir.exists():
        shutil.rmtree(profile_dir / "plugins", ignore_errors=True)
        shutil.rmtree(profile_dir / "hlo", ignore_errors=True)
    args = [*RECURRENT_ARGS, *FLAGS.train_flags]
    _train_flag_values(args)  # a bad --train_flags is one line, before anything runs
    cli.quiet_tensorflow()
    print("settings:", " ".join(args))
    with tempfile.TemporaryDirectory() as model_dir:
        trainer = _build_trainer(args, model_dir)
        sizes, pc = trainer.sizes, trainer.pc
        print(f"{trainer.model.count_params():,} parameters; per update: {sizes.batch} env "
              f"steps, {pc.update_epochs} epochs x {pc.num_minibatches} minibatch(es) of "
              f"{sizes.minibatch_chunks} chunks x ({sizes.prefix} + {sizes.chunk}) steps")
        for _ in range(FLAGS.warmup_updates):
            trainer._update()
        update_fn = trainer.update_fn  # before _timed_updates wraps it
        ms, split, calls, (data, orders) = _timed_updates(trainer, FLAGS.timed_updates)
        wall = _profile(update_fn, data, orders, FLAGS.profile_updates, profile_dir)
        trainer._close_envs()
        trainer.writer.close()

    steps = trainer.sizes.num_steps
    print(f"\n## {FLAGS.timed_updates} updates, ms per update (as metrics.json splits them)\n")
    print_table([(k, v) for k, v in ms.items()], ["phase", "ms / update"])
    print(f"\nRollout of {steps} steps, ms per update (calls per update in brackets):\n")
    print_table([(k + (f" ({calls[k]:.0f})" if k in calls else ""), v, v / steps)
                 for k, v in split.items()], ["rollout part", "ms / update", "ms / step"])

    count = FLAGS.profile_updates
    print(f"\n## The update under the profiler: {count} calls, {np.mean(wall):.1f} ms each "
          f"(min {min(wall):.1f}; {ms['update']:.1f} untraced)\n")
    times = self_times(_xspace(profile_dir))
    ops = hlo_ops(profile_dir / "hlo")
    _drop_kernel_dumps(profile_dir / "hlo")
    _print_parts(times, ops, count)
    _print_top(times, ops, count, FLAGS.top)


def _drop_kernel_dumps(hlo_dir):
    """Removes XLA's per-kernel dumps (LLVM IR, MLIR, objects: thousands of files), keeping
    the HLO text."""
    for path in pathlib.Path(hlo_dir).iterdir():
        if path.suffix in (".ll", ".mlir", ".o"):
            path.unlink()


def _print_parts(times, ops, count):
    """The update's parts: XLA's ops by part, then the other events, ms per update."""
    work = {n: row for n, row in times.items() if n not in WAITS}
    total_ps = sum(row[0] for row in work.values())
    parts = collections.defaultdict(float)
    for name, (ps, _) in work.items():
        if name in ops:
            for key, share in _shares(ops[name][1]).items():
                parts[key] += ps * share
    hlo_ps = sum(parts.values())
    rows = [(f"{part}{', backward' if backward else ''}", ps / 1e9 / count,
             100.0 * ps / total_ps)
            for (part, backward), ps in sorted(parts.items(), key=lambda kv: -kv[1])]
    rows.append(("**all XLA ops**", hlo_ps / 1e9 / count, 100.0 * hlo_ps / total_ps))
    outside = sorted(((n, row) for n, row in work.items() if n not in ops),
                     key=lambda kv: -kv[1][0])
    shown = outside[:8]
    rows += [(f"not an XLA op: {name} (x{n / count:g})", ps / 1e9 / count,
              100.0 * ps / total_ps) for name, (ps, n) in shown]
    rest = sum(row[0] for _, row in outside[8:])
    rows.append((f"not an XLA op: {len(outside) - len(shown)} other events", rest / 1e9 / count,
                 100.0 * rest / total_ps))
    print_table(rows, ["part (self time, all threads)", "ms / update", "% of the traced work"])
    waits = sum(times.get(n, (0, 0))[0] for n in WAITS)
    print(f"\nTraced work (self time on all threads, without the Python thread's wait in "
          f"{', '.join(WAITS)}: {waits / 1e9 / count:.1f} ms): {total_ps / 1e9 / count:.1f} ms "
          f"per update, {hlo_ps / 1e9 / count:.1f} ms of it in XLA's ops. A fusion's time is "
          "split between the parts of its TensorFlow ops, by their count.")


def _print_top(times, ops, count, top):
    """The `top` events by self time, with the parts of their TensorFlow ops."""
    work = {n: row for n, row in times.items() if n not in WAITS}
    total_ps = sum(row[0] for row in work.values())
    print(f"\n## Top {top} ops by self time\n")
    rows = []
    for name, (ps, n) in sorted(work.items(), key=lambda kv: -kv[1][0])[:top]:
        opcode, tf_names = ops.get(name, ("(not HLO)", []))
        where = ""
        if name in ops:
            shares = sorted(_shares(tf_names).items(), key=lambda kv: -kv[1])[:2]
            where = ", ".join(f"{p}{' bwd' if b else ''} {s:.0%}" for (p, b), s in shares)
        rows.append((name, opcode, f"{n / count:g}", ps / 1e9 / count,
                     100.0 * ps / total_ps, where))
    print_table(rows, ["op", "HLO opcode", "calls / update", "self ms / update", "%",
                       "part (by its TensorFlow ops)"])


if __name__ == "__main__":
    cli.run(main)
