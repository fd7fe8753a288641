r"""attn_agents benchmarks: each row is a real `python -m attn_agents.train` run.

    python -m benchmarks.ppo_bench                      # every row (hours on 2 cores)
    python -m benchmarks.ppo_bench --only=cartpole,speed
    python -m benchmarks.ppo_bench --only=speed --speed_steps=200000

Rows (the attention policy unless noted; each with its target): cartpole, masked_memory,
masked_mlp, acrobot, lunarlander, doorkey, memory_s7 (MiniGrid-MemoryS7 with `--memory=16`),
memory_s7_none (without memory), pendulum, and `speed`: env-steps/s on CartPole with 8
environments against SB3's PPO (zoo CartPole hyperparameters, the same 64-wide layers), run
here in the same invocation, for the attention policy (default XLA update, in
`--speed_rounds` rounds alternating with SB3's runs, and `--nojit_compile`) and the MLP
policy; and `recurrent`: our `--memory` policy against sb3-contrib's RecurrentPPO (LSTM, the
RL Zoo's CartPoleNoVel-v1 settings) on CartPole without velocities, one pair of runs per seed
at the same budget, returns and env-steps/s; and `popgym`: five POPGym environments with
`--memory` and with the MLP. SB3, sb3-contrib and torch go into their own
virtual environment
(`--sb3_venv`, created on first use), never into the project's.

The script prints one markdown table with the figures, the target and the ratio to it
(> 1 means the target is met, whichever direction the target points). Under it, the speed
rows' time per update split into collecting the rollout and the update, for SB3 and ours.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads

import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from attn_core import cli  # noqa: E402
from benchmarks.bench_utils import run_module, write_rows  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("root", "runs/ppo_bench", "Where the model directories go.")
flags.DEFINE_list("only", [], "Run only these rows, e.g. --only=cartpole,speed.")
flags.DEFINE_integer("seed", 1, "Seed of every run.")
flags.DEFINE_list("extra", [], "Extra flags for every training run.")
flags.DEFINE_integer("speed_steps", 200_000, "Env steps of each speed run.")
flags.DEFINE_integer("speed_rounds", 2, "speed: alternating SB3 / attention rounds.",
                     lower_bound=1)
flags.DEFINE_string("json_out", "", "speed: also write the rows against SB3 as JSON.")
flags.DEFINE_integer("recurrent_steps", 150_000,
                     "recurrent: env steps of each run, ours and RecurrentPPO's.")
flags.DEFINE_list("recurrent_seeds", ["1", "2", "3"], "recurrent: the seeds, one pair each.")
flags.DEFINE_integer("popgym_steps", None, "popgym: env steps of each run (default: each "
                     "environment's own budget in POPGYM_RUNS).", lower_bound=1)
flags.DEFINE_string("sb3_venv", "runs/sb3venv",
                    "SB3's own virtual environment (under the git-ignored runs/).")

# 4 epochs a rollout (CleanRL's and rl-starter-files' default) on a 32-wide policy: the update
# trains the token attention over 50 tokens for every step of every chunk and its window, so
# 10 epochs at width 64 made 1M steps take hours here (benchmarks/profile_ppo_update.py). With
# width 64, lr 1e-3 and 16-step chunks the memory run stayed near chance within 1M steps;
# width 32, lr 5e-4 and 32-step chunks learned it on one seed of three (docs/agents/memory.md).
# Both rows keep the best of a periodic evaluation every 25 updates (about 25k steps, 50
# episodes of their own seed), as SB3's EvalCallback does: the one seed that learned the task
# solved it from 256k steps and lost half of it by 1M. The row reports that policy's return
# on the final evaluation's 100 episodes, which it was not chosen on.
MEMORY_S7 = ["--env_id=MiniGrid-MemoryS7-v0", "--num_steps=128", "--num_minibatches=4",
             "--gamma=0.99", "--gae_lambda=0.95", "--update_epochs=4", "--learning_rate=5e-4",
             "--ent_coef=0.01", "--d_model=32", "--num_heads=2", "--ff_dim=64",
             "--eval_every=25", "--eval_every_episodes=50"]

# name -> (train flags, budget, target, direction); ">=" rows must reach the target,
# "<" rows must stay below it.
ROWS = {
    # The SB3 zoo's CartPole settings are PPOConfig's defaults; the zoo also anneals the clip.
    "cartpole": (["--env_id=CartPole-v1", "--anneal_clip"], 200_000, 475.0, ">="),
    "masked_memory": (["--env_id=CartPole-v1", "--mask_velocity", "--memory=8",
                       "--normalize_reward", "--gamma=0.99", "--gae_lambda=0.95", "--num_steps=64",
                       "--num_minibatches=4", "--update_epochs=10", "--learning_rate=5e-4",
                       "--chunk_length=16"], 500_000, 400.0, ">="),
    "masked_mlp": (["--env_id=CartPole-v1", "--mask_velocity", "--policy=mlp",
                    "--normalize_reward", "--gamma=0.99", "--gae_lambda=0.95", "--num_steps=64",
                    "--num_minibatches=4", "--update_epochs=10", "--learning_rate=5e-4"],
                   500_000, 200.0, "<"),
    "acrobot": (["--env_id=Acrobot-v1", "--normalize_obs", "--normalize_reward",
                 "--num_steps=128", "--gamma=0.99", "--gae_lambda=0.94", "--update_epochs=4",
                 "--num_minibatches=4", "--learning_rate=3e-4"], 500_000, -90.0, ">="),
    "lunarlander": (["--env_id=LunarLander-v3", "--normalize_reward", "--num_envs=16",
                     "--num_steps=1024", "--num_minibatches=256", "--gamma=0.999",
                     "--gae_lambda=0.98", "--update_epochs=4", "--ent_coef=0.01",
                     "--learning_rate=3e-4"], 1_000_000, 200.0, ">="),
    "doorkey": (["--env_id=MiniGrid-DoorKey-5x5-v0", "--num_steps=128",
                 "--num_minibatches=4", "--gamma=0.99", "--gae_lambda=0.95",
                 "--update_epochs=10", "--learning_rate=5e-4", "--ent_coef=0.01"],
                300_000, 0.9, ">="),
    # The object seen in the start room must be remembered down the corridor: a 16-step window
    # covers a whole successful episode. Without memory the choice at the end is a coin flip.
    "memory_s7": (MEMORY_S7 + ["--memory=16", "--chunk_length=32"], 1_000_000, 0.9, ">="),
    "memory_s7_none": (MEMORY_S7, 1_000_000, 0.6, "<"),
    # The zoo's Pendulum settings without gSDE (4 x 1024 steps, 64-sample minibatches, 10
    # epochs, gamma 0.9), at lr 3e-4; 300k steps, within the 500k budget.
    "pendulum": (["--env_id=Pendulum-v1", "--num_envs=4", "--num_steps=1024",
                  "--num_minibatches=64", "--gamma=0.9", "--gae_lambda=0.95",
                  "--update_epochs=10", "--learning_rate=3e-4", "--normalize_obs",
                  "--normalize_reward", "--ent_coef=0.0"],
                 300_000, -250.0, ">="),
}

# The RL Zoo's ppo_lstm CartPoleNoVel-v1 settings are PPOConfig's defaults (the zoo's CartPole
# ones) with observation normalization and the clip annealed, as RECURRENT_SCRIPT runs them,
# on a 32-wide policy: at the default width 64 the zoo's lr 1e-3 left seed 3 near 200 within
# 150k steps, and lr 3e-4 fixed seed 3 but not seed 1 (docs/agents/memory.md).
RECURRENT_ARGS = ["--env_id=CartPole-v1", "--mask_velocity", "--memory=8", "--normalize_obs",
                  "--anneal_clip", "--d_model=32", "--num_heads=2", "--ff_dim=64"]

# POPGym (Morad et al. 2023): its five environments the issue picked, each observation with the
# previous action as the paper's agents see it, a 32-wide network for both policies. A short
# window learns: with --memory=32 (and 8, at width 64) the RepeatPrevious agent stayed at
# chance where --memory=6 at width 32 solves it (lag 3); CountRecall's and Autoencode's 51- and
# 103-step episodes need more than such a window holds.
POPGYM_ARGS = ["--previous_action", "--d_model=32", "--num_steps=64", "--num_minibatches=4",
               "--update_epochs=8", "--learning_rate=3e-3", "--gamma=0.9",
               "--gae_lambda=0.95", "--ent_coef=0.01"]
POPGYM_MEMORY = ["--num_heads=2", "--ff_dim=32", "--chunk_length=16"]
# PositionOnlyCartPole is CartPole without velocities (RECURRENT_ARGS' task, episodes of 200
# steps): the zoo's CartPoleNoVel settings (PPOConfig's defaults) on the bare observation,
# normalized. Its reward of 1/200 a step left the critic with a loss too small to learn
# from: --normalize_reward took the best training return from 0.65 to 0.99 at 150k steps.
POSITION_ONLY = ["--noprevious_action", "--normalize_obs", "--normalize_reward",
                 "--anneal_clip", "--num_steps=32", "--num_minibatches=1", "--update_epochs=20",
                 "--learning_rate=1e-3", "--gamma=0.98", "--gae_lambda=0.8", "--ent_coef=0.0"]
# id -> (env steps, flags of both runs (after POPGYM_ARGS, so they override it), the memory
# run's own flags). MineSweeper's episodes (up to 14 cells) need the whole episode in the
# window, and at lr 3e-3 neither policy kept what it learned: it trains 400k steps at lr 1e-3.
POPGYM_RUNS = {
    # The paper's MMER counts every sampled answer: at --ent_coef=0.01 one answer in about a
    # thousand stayed wrong (0.999); at 0.001 the policy gets sure enough for 0.9997.
    "popgym-RepeatPreviousEasy-v0": (100_000, ["--ent_coef=0.001"],
                                     ["--memory=6", *POPGYM_MEMORY]),
    # The count needs the whole episode in the window; its rewards (1/51 a step) need
    # --normalize_reward, as PositionOnlyCartPole's (both policies were at chance without).
    # A sigmoid read sums the matching steps where a softmax averages them: at lr 1e-3 it
    # learned the count (MMER -0.37 against -0.50 at 400k steps), and kept learning to 1M.
    # An answer does not change the cards dealt next, so nothing is gained by looking ahead:
    # at --gamma=0.1 an answer's advantage is its own reward, not also the noise of the
    # answers after it (MMER 0.37 at 1M steps, against -0.25 at gamma 0.9).
    "popgym-CountRecallEasy-v0": (1_000_000, ["--normalize_reward", "--learning_rate=1e-3",
                                              "--gamma=0.1"],
                                  ["--memory=52", "--memory_read=sigmoid", *POPGYM_MEMORY]),
    "popgym-PositionOnlyCartPoleEasy-v0": (300_000, POSITION_ONLY,
                                           ["--memory=8", "--num_heads=2", "--ff_dim=64"]),
    # The k-th recited card (from 0) was seen 2k steps back: a lag that moves with the time,
    # so the window (the whole episode) needs the time (--episode_step, added to the
    # summary). Without the previous action, which tells this task nothing, the lookup is
    # learned (MMER 0.146 at 500k steps, against -0.448 with it as one more pooled token).
    # The answers change nothing that follows, hence --gamma=0.1 as on CountRecall.
    "popgym-AutoencodeEasy-v0": (500_000, ["--noprevious_action", "--episode_step",
                                           "--normalize_reward", "--learning_rate=1e-3",
                                           "--gamma=0.1"],
                                 ["--memory=104", *POPGYM_MEMORY]),
    "popgym-MineSweeperEasy-v0": (400_000, ["--learning_rate=1e-3"],
                                  ["--memory=16", *POPGYM_MEMORY]),
}

SB3_RUN = r"""
phases = {"collect_rollouts": 0.0, "train": 0.0}  # timed like ours: rollout, update
for name in phases:
    def timed(*args, _method=getattr(model, name), _name=name, **kwargs):
        begin = time.perf_counter()
        try:
            return _method(*args, **kwargs)
        finally:
            phases[_name] += time.perf_counter() - begin
    setattr(model, name, timed)
start = time.perf_counter()
model.learn(total_timesteps=steps)
seconds = time.perf_counter() - start
mean, std = evaluate_policy(model, make_eval_env(), n_eval_episodes=100, deterministic=True)
print(json.dumps({"steps_per_second": model.num_timesteps / seconds, "seconds": seconds,
                  "env_steps": model.num_timesteps, "eval_mean_return": float(mean),
                  "eval_std_return": float(std),
                  "updates": model.num_timesteps // (model.n_steps * model.n_envs),
                  "rollout_seconds": phases["collect_rollouts"],
                  "update_seconds": phases["train"]}))
"""

SB3_SCRIPT = r"""
import json, sys, time
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
torch.set_num_threads(2)
steps, seed = int(sys.argv[1]), int(sys.argv[2])
env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
# rl-baselines3-zoo's CartPole-v1 hyperparameters; the default MlpPolicy is 64-64 tanh.
model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
            n_epochs=20, ent_coef=0.0, learning_rate=lambda f: 1e-3 * f,
            clip_range=lambda f: 0.2 * f, seed=seed, device="cpu",
            policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64])))


def make_eval_env():
    return make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1)
""" + SB3_RUN

RECURRENT_SCRIPT = r"""
import json, sys, time
import gymnasium as gym
import numpy as np
import torch
from torch import nn
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize
torch.set_num_threads(2)
steps, seed = int(sys.argv[1]), int(sys.argv[2])


class NoVelocity(gym.ObservationWrapper):
    # The zoo's CartPoleNoVel-v1: cart position and pole angle only (our --mask_velocity).
    def __init__(self, env):
        super().__init__(env)
        low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, obs):
        return np.asarray(obs, np.float32)[[0, 2]]


env = VecNormalize(make_vec_env("CartPole-v1", n_envs=8, seed=seed, wrapper_class=NoVelocity),
                   norm_obs=True, norm_reward=False)
# rl-baselines3-zoo's ppo_lstm CartPoleNoVel-v1 hyperparameters.
model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8,
                     gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate=lambda f: 1e-3 * f,
                     clip_range=lambda f: 0.2 * f, seed=seed, device="cpu",
                     policy_kwargs=dict(ortho_init=False, activation_fn=nn.ReLU,
                                        lstm_hidden_size=64, enable_critic_lstm=True,
                                        net_arch=dict(pi=[64], vf=[64])))


def make_eval_env():
    eval_env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1000,
                                         wrapper_class=NoVelocity),
                            norm_obs=True, norm_reward=False, training=False)
    eval_env.obs_rms = env.obs_rms  # the training run's statistics, frozen
    return eval_env
""" + SB3_RUN


def train(name, args, budget, eval_episodes=100, seed=None):
    """Runs attn_agents.train; returns its metrics.json with the wall time."""
    seed = FLAGS.seed if seed is None else seed
    return run_module(name, "attn_agents.train", pathlib.Path(FLAGS.root) / name,
                      [f"--total_timesteps={budget}", f"--seed={seed}",
                       f"--eval_episodes={eval_episodes}", "--noprogress", *args, *FLAGS.extra])


def sb3_python():
    """The SB3 venv's python, created (stable-baselines3 + CPU torch) on first use."""
    venv = pathlib.Path(FLAGS.sb3_venv)
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import sb3_contrib"],
                                          capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    cpu_torch = subprocess.run(
        [*pip, "torch", "--index-url", "https://download.pytorch.org/whl/cpu"])
    if cpu_torch.returncode:
        subprocess.run([*pip, "torch"], check=True)
    subprocess.run([*pip, "stable-baselines3", "sb3-contrib"], check=True)
    return python


def sb3_run(python, script=SB3_SCRIPT, steps=None, seed=None):
    """One run of an SB3 script (default: PPO, zoo CartPole settings, 64-64); returns its
    JSON line as a dict."""
    steps = FLAGS.speed_steps if steps is None else steps
    seed = FLAGS.seed if seed is None else seed
    result = subprocess.run([str(python), "-c", script, str(steps), str(seed)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def phase_ms(m):
    """`rollout X + update Y of Z in all`: ms per update, from a run's metrics."""
    rollout, update = (m[k] * 1e3 / m["updates"] for k in ("rollout_seconds", "update_seconds"))
    total = m["env_steps"] / m["steps_per_second"] * 1e3 / m["updates"]
    return f"rollout {rollout:.1f} + update {update:.1f} of {total:.1f} in all"


def speed_rows():
    """SB3 and our attention policy in alternating rounds (SB3's speed varies
    between runs), then `--nojit_compile` and the MLP policy against SB3's mean.

    Returns:
        `(rows, phases)`: the table's rows, and lines with each run's time per update split
        into the rollout and the update.
    """
    cartpole = ROWS["cartpole"][0]  # the zoo's settings, as SB3 runs them
    python = sb3_python()
    rounds = []
    for i in range(FLAGS.speed_rounds):
        sb3 = sb3_run(python)
        ours = train("speed_attention" + (f"_{i + 1}" if i else ""), cartpole,
                     FLAGS.speed_steps)
        rounds.append((ours, sb3))
    ours_eager = train("speed_attention_nojit", [*cartpole, "--nojit_compile"],
                       FLAGS.speed_steps)
    mlp = train("speed_mlp", [*cartpole, "--policy=mlp"], FLAGS.speed_steps)
    sb3_mean = {"steps_per_second": np.mean([s["steps_per_second"] for _, s in rounds]),
                "eval_mean_return": np.mean([s["eval_mean_return"] for _, s in rounds])}
    compared = [(f"speed: attention vs SB3 PPO, round {i + 1}", ours, sb3)
                for i, (ours, sb3) in enumerate(rounds)]
    compared += [("speed: attention --nojit_compile vs SB3 PPO (mean)", ours_eager, sb3_mean),
                 ("speed: mlp vs SB3 PPO (mean)", mlp, sb3_mean)]
    rows = [[label, "CartPole-v1 x8", FLAGS.speed_steps,
             f"{m['eval_mean_return']:.1f} ± {m['eval_std_return']:.1f}",
             f"SB3 {sb3['steps_per_second']:.0f} steps/s ({sb3['eval_mean_return']:.1f})",
             m["steps_per_second"] / sb3["steps_per_second"], m["steps_per_second"],
             m["wall_minutes"]]
            for label, m, sb3 in compared]
    ratios = [ours["steps_per_second"] / sb3["steps_per_second"] for ours, sb3 in rounds]
    rows.append(["speed: attention vs SB3 PPO, mean of the rounds' ratios", "CartPole-v1 x8",
                 FLAGS.speed_steps, "", "", float(np.mean(ratios)), "", ""])
    # For run_all: the attention policy (the rounds' mean), without XLA, and the MLP.
    ours_mean = float(np.mean([o["steps_per_second"] for o, _ in rounds]))
    write_rows(FLAGS.json_out, [
        {"row": f"PPO CartPole-v1 x8, {policy} policy{note}, vs SB3 PPO (64-64)",
         "unit": "env-steps/s", "ours": float(speed),
         "anchor": float(sb3_mean["steps_per_second"]), "anchor_name": "SB3 PPO"}
        for policy, note, speed in (("attention", "", ours_mean),
                                    ("attention", ", update without XLA",
                                     ours_eager["steps_per_second"]),
                                    ("mlp", "", mlp["steps_per_second"]))])
    phases = [f"round {i + 1}, ms per {ours['env_steps'] // ours['updates']} env steps "
              f"(start-up included): attention {phase_ms(ours)}; SB3 {phase_ms(sb3)}"
              for i, (ours, sb3) in enumerate(rounds)]
    phases.append(f"mlp: {phase_ms(mlp)}; attention --nojit_compile: {phase_ms(ours_eager)}")
    return rows, phases


def recurrent_rows():
    """Our memory policy against sb3-contrib's RecurrentPPO (LSTM) on CartPole without
    velocities, one pair of runs per seed in `--recurrent_seeds`, alternating, at the same
    budget: returns per seed and the speed ratio, then the means.

    Returns:
        The table's rows.
    """
    python = sb3_python()
    rows, ratios = [], []
    budget = FLAGS.recurrent_steps
    for seed in map(int, FLAGS.recurrent_seeds):
        lstm = sb3_run(python, RECURRENT_SCRIPT, budget, seed)
        ours = train(f"recurrent_memory_s{seed}", RECURRENT_ARGS, budget, seed=seed)
        ratio = ours["steps_per_second"] / lstm["steps_per_second"]
        ratios.append(ratio)
        rows.append([f"memory vs RecurrentPPO, seed {seed}", "CartPole no velocities x8",
                     budget, f"{ours['eval_mean_return']:.1f} ± {ours['eval_std_return']:.1f}",
                     f">= 475; RecurrentPPO {lstm['eval_mean_return']:.1f} ± "
                     f"{lstm['eval_std_return']:.1f} at "
                     f"{lstm['steps_per_second']:.0f} steps/s (speed {ratio:.2f}x)",
                     ours["eval_mean_return"] / 475.0, ours["steps_per_second"],
                     ours["wall_minutes"]])
    # The median: one pair's ratio swings when other work shares the cores with one of them.
    rows.append(["memory vs RecurrentPPO: speed, median of the seeds' ratios (target >= 1)",
                 "CartPole no velocities x8", budget, "", "", float(np.median(ratios)), "", ""])
    write_rows(FLAGS.json_out, [
        {"row": "PPO CartPole without velocities x8, memory policy vs sb3-contrib "
                "RecurrentPPO (LSTM 64)", "unit": "env-steps/s ratio",
         "ours": float(np.median(ratios)), "anchor": 1.0, "anchor_name": "RecurrentPPO"}])
    return rows


def max_mean_return(model_dir, window=20):
    """The best moving mean of the training curve's `charts/episodic_return` points (each the
    mean of the episodes that ended at one step), as POPGym's MMER takes the best mean over
    training."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(model_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tag = "charts/episodic_return"
    if tag in events.Tags()["scalars"]:
        values = np.asarray([e.value for e in events.Scalars(tag)])
    elif tag in events.Tags()["tensors"]:
        values = np.asarray([float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)])
    else:
        values = np.zeros(0)
    if len(values) < window:
        return float(values.mean()) if len(values) else float("nan")
    return float(np.convolve(values, np.ones(window) / window, mode="valid").max())


def popgym_rows():
    """Each POPGym environment with `--memory` and with the MLP, at the environment's budget.

    Returns:
        The table's rows: greedy evaluation return and the best moving mean of the training
        returns (MMER-like) of both, memory against MLP.
    """
    rows = []
    for env_id, (budget, shared, memory) in POPGYM_RUNS.items():
        budget = FLAGS.popgym_steps or budget
        short = env_id.removeprefix("popgym-").removesuffix("-v0")
        runs = {}
        for kind, args in (("memory", memory), ("mlp", ["--policy=mlp"])):
            name = f"popgym_{short}_{kind}"
            try:
                m = train(name, [f"--env_id={env_id}", *POPGYM_ARGS, *shared, *args], budget)
            except SystemExit as failure:  # one environment's failure keeps the others
                print(failure, flush=True)
                continue
            m["mmer"] = max_mean_return(pathlib.Path(FLAGS.root) / name)
            runs[kind] = m
        for kind, m in runs.items():
            other = runs.get("mlp")
            rows.append([f"popgym {short}, {kind}", env_id, budget,
                         f"{m['eval_mean_return']:.3f} ± {m['eval_std_return']:.3f}",
                         f"MMER {m['mmer']:.3f}" + (
                             f"; > MLP's {other['mmer']:.3f}" if kind == "memory" and other
                             else ""),
                         (m["mmer"] - other["mmer"]) if kind == "memory" and other else "",
                         m["steps_per_second"], m["wall_minutes"]])
        print(rows[-len(runs):] if runs else f"{env_id}: no run finished", flush=True)
    return rows


def main(argv):
    del argv  # cli.run refuses stray arguments
    suites = ("speed", "recurrent", "popgym")
    names = FLAGS.only or [*ROWS, *suites]
    unknown = [n for n in names if n not in ROWS and n not in suites]
    if unknown:
        cli.fail(f"Expected --only names from {[*ROWS, *suites]}. Received: {unknown}")
    rows, phases = [], []
    for name in names:
        if name == "speed":
            speed, phases = speed_rows()
            rows += speed
            continue
        if name == "popgym":
            rows += popgym_rows()
            continue
        if name == "recurrent":
            rows += recurrent_rows()
            continue
        args, budget, target, direction = ROWS[name]
        m = train(name, args, budget)
        # With --eval_every the row is the best periodic evaluation's policy (the final
        # policy's return beside it); without, the final policy.
        best = "best_eval_mean_return" in m
        mean = m["best_eval_mean_return"] if best else m["eval_mean_return"]
        std = m["best_eval_std_return"] if best else m["eval_std_return"]
        shown = (f"{mean:.4g} ± {std:.3g} (best, step {m['best_step']}; final "
                 f"{m['eval_mean_return']:.4g})" if best else f"{mean:.4g} ± {std:.3g}")
        if direction == ">=":
            ratio = mean / target if target > 0 else target / mean if mean < 0 else float("inf")
        else:
            ratio = target / mean if mean > 0 else float("inf")
        rows.append([name, m["env_id"] + (" (mlp)" if m["policy"] == "mlp" else ""), budget,
                     shown, f"{direction} {target:g}",
                     ratio, m["steps_per_second"], m["wall_minutes"]])
    columns = ["row", "env", "steps", "eval return (100 ep.)", "target", "ratio", "steps/s",
               "wall min"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v)
                                for v in row) + " |")
    for line in phases:
        print(line)


if __name__ == "__main__":
    cli.run(main)
