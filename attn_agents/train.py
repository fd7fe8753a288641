r"""Train a PPO agent with an attention (or MLP) policy, then evaluate it greedily.

    python -m attn_agents.train --env_id=CartPole-v1 --policy=attention \
        --total_timesteps=200000 --model_dir=runs/cartpole [--seed=1]
    python -m attn_agents.train --env_id=CartPole-v1 --mask_velocity --memory=8 \
        --total_timesteps=500000 --model_dir=runs/masked
    python -m attn_agents.train --env_id=MiniGrid-DoorKey-5x5-v0 --model_dir=runs/doorkey

A model directory that already holds a checkpoint is resumed. At the end it writes
`metrics.json` (greedy evaluation over --eval_episodes episodes, speed) beside the
TensorBoard events (charts/*, losses/*, the hyperparameter table) and the checkpoints.

Multi-worker training (`MultiWorkerMirroredStrategy`, one process per worker, each told its
place by TF_CONFIG): every worker gets the same shared --model_dir and the same flags;
--num_envs counts the environments of all workers (each steps num_envs / workers of them).

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' \
        python -m attn_agents.train --strategy=multi_worker --model_dir=/shared/cartpole
    (and the same with "index": 1 on host1)

Only the chief (index 0) writes the model directory and evaluates; with --normalize_obs or
--normalize_reward each worker keeps its own running statistics (the chief's are saved).
Every worker ends with a `weights fingerprint: <hex>` line: equal on workers in sync.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import dataclasses  # noqa: E402
import logging  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from attn_agents.env_config import EnvConfig  # noqa: E402
from attn_agents.env_error import EnvError  # noqa: E402
from attn_agents.policy_config import POLICIES, PolicyConfig  # noqa: E402
from attn_agents.ppo_config import PPOConfig  # noqa: E402
from attn_core import flags as common_flags  # noqa: E402

FLAGS = flags.FLAGS

PPO_HELP = {
    "total_timesteps": "Environment steps to train for (all environments together).",
    "num_steps": "Steps per environment in each rollout.",
    "learning_rate": "Adam learning rate at the start.",
    "anneal_lr": "Decay the learning rate linearly to 0.",
    "gamma": "Discount factor.",
    "gae_lambda": "GAE lambda.",
    "num_minibatches": "Minibatches per epoch.",
    "update_epochs": "Epochs over each rollout.",
    "norm_adv": "Normalize advantages per minibatch.",
    "clip_coef": "PPO ratio clip epsilon (and value clip).",
    "anneal_clip": "Decay clip_coef linearly to 0, as the SB3 zoo's lin_0.2.",
    "clip_vloss": "Clip the value loss around the old values.",
    "ent_coef": "Entropy bonus coefficient.",
    "vf_coef": "Value loss coefficient.",
    "max_grad_norm": "Global gradient-norm clip.",
    "target_kl": "Stop an update's epochs above this approximate KL (0: never).",
    "chunk_length": "With --memory: training sequence length (divides --num_steps).",
    "checkpoint_every": "Updates between checkpoints.",
    "eval_episodes": "Greedy evaluation episodes at the end.",
}
POLICY_HELP = {
    "d_model": "Token / summary width.",
    "num_heads": "Attention heads.",
    "attention_layers": "Pre-LN self-attention blocks over the tokens.",
    "ff_dim": "Feed-forward width of the attention blocks.",
    "memory": "K > 0: causal temporal attention over the last K steps.",
    "patch_size": "Patch side for image observations.",
    "log_std_init": "Initial log-std of continuous actions.",
}


def _define_from(cls, helps, skip=()):
    defaults = cls()
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        value, doc = getattr(defaults, field.name), helps[field.name]
        if isinstance(value, bool):
            flags.DEFINE_bool(field.name, value, doc)
        elif isinstance(value, int):
            flags.DEFINE_integer(field.name, value, doc, lower_bound=0)
        else:
            flags.DEFINE_float(field.name, value, doc)


def define_flags():
    common_flags.define_common_flags()
    # The update is 20 minibatch steps of many small ops: XLA fuses them (1.6-1.8x the
    # env-steps/s on CartPole here). It applies on one replica; --nojit_compile turns it off.
    flags.FLAGS.set_default("jit_compile", True)
    flags.DEFINE_string("model_dir", None, "Model directory (default: a fresh run directory).")
    env = EnvConfig()
    flags.DEFINE_string("env_id", env.env_id, "Gymnasium environment id.")
    flags.DEFINE_integer("num_envs", env.num_envs, "Parallel environments.", lower_bound=1)
    flags.DEFINE_bool("async_envs", env.async_envs, "Step the environments in subprocesses.")
    flags.DEFINE_bool("normalize_obs", env.normalize_obs, "Normalize Box observations.")
    flags.DEFINE_bool("normalize_reward", env.normalize_reward, "Scale rewards by the "
                      "running std of the discounted return.")
    flags.DEFINE_bool("mask_velocity", env.mask_velocity, "CartPole: hide the velocities.")
    flags.DEFINE_enum("policy", PolicyConfig().policy, POLICIES, "Policy network.")
    _define_from(PolicyConfig, POLICY_HELP, skip=("policy",))
    _define_from(PPOConfig, PPO_HELP)
    flags.DEFINE_bool("progress", True, "Show the progress bar.")


def _config(cls, skip=()):
    return cls(**{f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(cls)
                  if f.name not in skip})


def _shared_model_dir(model_dir):
    """The multi-worker model directory, not created here: only the chief writes it."""
    if not model_dir:
        raise ValueError("Expected --model_dir with --strategy=multi_worker (the same shared "
                         "directory for every worker). Received: no --model_dir")
    path = pathlib.Path(model_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"Expected --model_dir to be a directory. Received: "
                         f"model_dir={model_dir!r} (a file)")
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from attn_agents.env_factory import make_env

    try:
        common = common_flags.common_config_from_flags()
        env_config = _config(EnvConfig)
        policy_config = _config(PolicyConfig)
        ppo_config = _config(PPOConfig)
        make_env(env_config).close()  # unknown ids and unsupported spaces fail here, fast
        from attn_core import run_dir

        if common.strategy == "multi_worker":
            workdir = _shared_model_dir(FLAGS.model_dir)
        elif FLAGS.model_dir:
            workdir = run_dir.resolve_workdir(FLAGS.model_dir)
        else:
            workdir = run_dir.make_run_dir(
                "runs", [env_config.env_id.replace("/", "-"), f"ppo_{policy_config.policy}",
                         common.seed])
    except (EnvError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"model directory: {workdir}")
    from attn_core.quiet_import import import_tensorflow_quietly

    import_tensorflow_quietly()
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") >= "3":  # nor the strategies' INFO lines
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from attn_agents.ppo_trainer import train_and_evaluate

    try:
        train_and_evaluate(env_config, policy_config, ppo_config, common, workdir,
                           verbose=int(FLAGS.progress))
    except EnvError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
