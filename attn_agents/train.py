r"""Train a PPO agent with an attention (or MLP) policy, then evaluate it greedily.

    python -m attn_agents.train --env_id=CartPole-v1 --policy=attention \
        --total_timesteps=200000 --model_dir=runs/cartpole [--seed=1]
    python -m attn_agents.train --env_id=CartPole-v1 --mask_velocity --memory=8 \
        --total_timesteps=500000 --model_dir=runs/masked
    python -m attn_agents.train --env_id=MiniGrid-DoorKey-5x5-v0 --model_dir=runs/doorkey

A model directory that already holds a run is resumed from its newest intact checkpoint,
with its saved settings: a model or environment flag given explicitly that differs from
them is a one-line error (nothing in the directory is touched); the schedule
(`--total_timesteps`, `--learning_rate`, `--anneal_lr`, `--checkpoint_every`,
`--eval_episodes`, `--eval_every`, `--eval_every_episodes`, `--async_envs`) may change, and
each change is logged. Ctrl-C saves a checkpoint after the current update and exits with
status 130. At the end it writes `metrics.json` (greedy evaluation over --eval_episodes
episodes, speed, precision) beside the TensorBoard events (charts/*, losses/*, the
hyperparameter table) and the checkpoints.

With --eval_every=U the policy is also evaluated greedily every U updates (over
--eval_every_episodes episodes, eval/periodic_mean_return); the policy of the best of these
evaluations is kept in `best/`, and `metrics.json` adds its return on the final
evaluation's episodes (`best_eval_mean_return`), which it was not selected on.
`python -m attn_agents.evaluate --policy_weights=best` evaluates it.

Multi-worker training (`MultiWorkerMirroredStrategy`, one process per worker, each told its
place by TF_CONFIG): every worker gets the same shared --model_dir and the same flags;
--num_envs counts the environments of all workers (each steps num_envs / workers of them).

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' \
        python -m attn_agents.train --strategy=multi_worker --model_dir=/shared/cartpole
    (and the same with "index": 1 on host1)

Only the chief (index 0) writes (and locks) the model directory and evaluates; with
--normalize_obs or --normalize_reward each worker keeps its own running statistics (the
chief's are saved). Every worker ends with a `weights fingerprint: <hex>` line: equal on
workers in sync.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import dataclasses  # noqa: E402

from absl import flags  # noqa: E402

from attn_agents import model_dir as agent_dir  # noqa: E402
from attn_agents.env_config import EnvConfig  # noqa: E402
from attn_agents.policy_config import MEMORY_GATES, MEMORY_READS, POLICIES, PolicyConfig  # noqa: E402
from attn_agents.ppo_config import PPOConfig, rollout_sizes  # noqa: E402
from attn_core import cli  # noqa: E402
from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_model_dir  # noqa: E402
from attn_core.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS
POSITIVE = {"num_envs", "d_model", "num_heads", "attention_layers", "ff_dim", "patch_size",
            "total_timesteps", "num_steps", "num_minibatches", "update_epochs",
            "chunk_length", "checkpoint_every", "eval_every_episodes"}


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the flags of `attn_agents.train` (the common ones, and one per config field)."""
    common_flags.define_common_flags(flag_values)
    # The update is many minibatch steps of small ops, which XLA fuses: on by default here
    # (--nojit_compile turns it off). It applies to the update on one replica, and to the
    # policy step of the rollouts and evaluations.
    flag_values.set_default("jit_compile", True)
    if "model_dir" not in flag_values:
        flags.DEFINE_string("model_dir", None, "Model directory: resumed when it holds a run "
                            "(default: a fresh runs/<env>__ppo_<policy>__<seed>__<UTC time>).",
                            flag_values=flag_values)
    bounds = {name: (1, None) for name in POSITIVE} | {"log_std_init": (None, None)}
    common_flags.define_config_flags(EnvConfig, flag_values, bounds=bounds)
    common_flags.define_config_flags(PolicyConfig, flag_values,
                                     enums={"policy": POLICIES, "memory_gate": MEMORY_GATES,
                                            "memory_read": MEMORY_READS},
                                     bounds=bounds)
    common_flags.define_config_flags(PPOConfig, flag_values, bounds=bounds)
    if "progress" not in flag_values:
        flags.DEFINE_bool("progress", True, "Show the progress: a bar on a terminal, a line "
                          "every 30 s in a log.", flag_values=flag_values)


def _given_run(flag_values, seed) -> agent_dir.RunConfig:
    """The settings from the command line; a config's own check fails as one line."""
    try:
        run = agent_dir.RunConfig(common_flags.config_from_flags(EnvConfig, flag_values),
                                  common_flags.config_from_flags(PolicyConfig, flag_values),
                                  common_flags.config_from_flags(PPOConfig, flag_values),
                                  seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    if run.policy.policy == "mlp" and run.policy.memory:
        # The MLP is the memoryless baseline of the benchmarks; a memory is the attention
        # policy's (the library still builds an MLP torso under a memory, e.g. for tests).
        raise UserError("Expected --memory=0 with --policy=mlp (the temporal memory comes "
                        "with --policy=attention). Received: "
                        f"memory={run.policy.memory}")
    return run


def main(argv, flag_values: flags.FlagValues = FLAGS):
    del argv  # `cli.run` refuses stray arguments
    common = common_flags.common_config_from_flags(flag_values)
    given = _given_run(flag_values, common.seed)
    if common.strategy == "multi_worker" and not flag_values.model_dir:
        raise UserError("Expected --model_dir with --strategy=multi_worker (the same shared "
                        "directory for every worker). Received: no --model_dir")
    path = core_model_dir.resolve(
        flag_values.model_dir, [given.env.env_id, f"ppo_{given.policy.policy}", common.seed])
    # On resume the saved settings win; the trainer logs the schedule changes.
    run = agent_dir.reconcile(path, agent_dir.read_saved(path), given,
                              common_flags.explicit_flags(flag_values), log=lambda _: None)
    rollout_sizes(run.ppo, run.policy.memory, run.env.num_envs)  # the workers' split: later
    from attn_agents.env_factory import make_env

    make_env(run.env).close()  # unknown ids, missing packages, unsupported spaces
    print(f"model directory: {path}")
    cli.quiet_tensorflow()
    from attn_agents.ppo_trainer import train_and_evaluate

    train_and_evaluate(run.env, run.policy, run.ppo, dataclasses.replace(common, seed=run.seed),
                       path, verbose=int(flag_values.progress))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
