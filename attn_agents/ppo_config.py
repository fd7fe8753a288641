"""The PPO hyperparameters, a frozen config the library takes.

The defaults are tuned for CartPole-v1 with the attention policy (close to the SB3 zoo's
CartPole settings: 8 envs x 32 steps, 20 epochs, gamma 0.98, lambda 0.8, lr 1e-3 annealed).
"""

import dataclasses

from attn_core.config_checks import require_non_negative_ints, require_positive_ints
from attn_core.errors import UserError


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """How PPO collects data and updates the policy.

    Attributes:
        total_timesteps: Environment steps to train for (over all N environments).
        num_steps: Steps T per environment in each rollout; a rollout is T x N transitions.
        learning_rate: Adam learning rate at the start.
        anneal_lr: Decay the learning rate linearly to 0 over the run.
        gamma: Discount factor.
        gae_lambda: GAE lambda.
        num_minibatches: Minibatches per epoch.
        update_epochs: Passes over each rollout.
        norm_adv: Normalize advantages within each minibatch.
        clip_coef: PPO ratio clip epsilon at the start.
        anneal_clip: Decay `clip_coef` (the ratio and the value clip) linearly to 0 over the
            run, as the SB3 zoo's `clip_range: lin_0.2`.
        clip_vloss: Clip the value update around the old value by `clip_coef` too.
        ent_coef: Entropy bonus coefficient.
        vf_coef: Value loss coefficient.
        max_grad_norm: Global gradient-norm clip.
        target_kl: Stop the epochs of an update once the approximate KL exceeds this (0: never).
        chunk_length: With memory: the training sequences' length L (divides `num_steps`).
        checkpoint_every: Updates between checkpoints.
        eval_episodes: Greedy evaluation episodes at the end, written to metrics.json.
        eval_every: Updates between periodic greedy evaluations during training (0: none); the
            best one's policy is kept in `best/`.
        eval_every_episodes: Greedy episodes of each periodic evaluation.
    """

    total_timesteps: int = 200_000
    num_steps: int = 32
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    gamma: float = 0.98
    gae_lambda: float = 0.8
    num_minibatches: int = 1
    update_epochs: int = 20
    norm_adv: bool = True
    clip_coef: float = 0.2
    anneal_clip: bool = False
    clip_vloss: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float = 0.0
    chunk_length: int = 16
    checkpoint_every: int = 50
    eval_episodes: int = 100
    eval_every: int = 0
    eval_every_episodes: int = 20

    def __post_init__(self):
        require_positive_ints(self, "total_timesteps", "num_steps", "num_minibatches",
                              "update_epochs", "chunk_length", "checkpoint_every",
                              "eval_every_episodes")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"Expected 0 < gamma <= 1 and 0 <= gae_lambda <= 1. "
                             f"Received: gamma={self.gamma}, gae_lambda={self.gae_lambda}")
        if self.eval_episodes < 0:
            raise ValueError(f"Expected `eval_episodes` to be >= 0. "
                             f"Received: eval_episodes={self.eval_episodes}")
        require_non_negative_ints(self, "eval_every", zero_means="no periodic evaluation")


@dataclasses.dataclass(frozen=True)
class RolloutSizes:
    """The sizes of one worker's rollouts and updates in a run.

    Attributes:
        prefix: P = K - 1, the earlier steps in front of each training chunk (0 without
            memory).
        chunk: L, the query steps of each training chunk (1 without memory).
        num_envs: N, this worker's environments.
        num_steps: T, the steps per environment of each rollout.
        num_chunks: This worker's chunks per rollout, N * T / L.
        minibatch_chunks: This worker's chunks per minibatch.
        batch: The transitions of one rollout over all workers.
        num_updates: The rollouts (and updates) of the whole run.
    """

    prefix: int
    chunk: int
    num_envs: int
    num_steps: int
    num_chunks: int
    minibatch_chunks: int
    batch: int
    num_updates: int


def rollout_sizes(ppo: PPOConfig, memory: int, num_envs: int, workers: int = 1,
                  local_replicas: int = 1) -> RolloutSizes:
    """The sizes of a run, checked.

    Args:
        ppo: The PPO settings.
        memory: K, the policy's memory (0: none).
        num_envs: The environments of all workers together.
        workers: The number of workers (each steps `num_envs / workers` environments).
        local_replicas: The replicas of each worker, between which its part of every
            minibatch is split.

    Raises:
        UserError: If `chunk_length` does not divide `num_steps` with memory, or a worker's
            part of a minibatch is empty or cannot be split between its replicas.
    """
    chunk = ppo.chunk_length if memory else 1
    if memory and ppo.num_steps % chunk:
        raise UserError(f"Expected --chunk_length to divide --num_steps with --memory. "
                        f"Received: chunk_length={chunk}, num_steps={ppo.num_steps}")
    local_envs = num_envs // workers
    num_chunks = local_envs * ppo.num_steps // chunk
    minibatch_chunks = num_chunks // ppo.num_minibatches
    if minibatch_chunks < 1 or minibatch_chunks % local_replicas:
        what = ("environments x steps" if chunk == 1
                else f"environments x steps / --chunk_length={chunk}")
        worker = f" of each of the {workers} workers" if workers > 1 else ""
        replicas = (f", a multiple of its {local_replicas} replicas" if local_replicas > 1
                    else "")
        raise UserError(
            f"Expected each minibatch to hold at least one chunk{replicas}: the {num_chunks} "
            f"chunks ({what}){worker} split into --num_minibatches. Received: "
            f"num_minibatches={ppo.num_minibatches}")
    batch = num_envs * ppo.num_steps
    return RolloutSizes(prefix=max(memory - 1, 0), chunk=chunk, num_envs=local_envs,
                        num_steps=ppo.num_steps, num_chunks=num_chunks,
                        minibatch_chunks=minibatch_chunks, batch=batch,
                        num_updates=max(ppo.total_timesteps // batch, 1))
