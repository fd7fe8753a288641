"""The PPO hyperparameters, a frozen config the library takes.

The defaults are tuned for CartPole-v1 with the attention policy (close to the SB3 zoo's
CartPole settings: 8 envs x 32 steps, 20 epochs, gamma 0.98, lambda 0.8, lr 1e-3 annealed).
"""

import dataclasses

from attn_core.config_checks import require_positive_ints


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

    def __post_init__(self):
        require_positive_ints(self, "total_timesteps", "num_steps", "num_minibatches",
                              "update_epochs", "chunk_length", "checkpoint_every")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"Expected 0 < gamma <= 1 and 0 <= gae_lambda <= 1. "
                             f"Received: gamma={self.gamma}, gae_lambda={self.gae_lambda}")
        if self.eval_episodes < 0:
            raise ValueError(f"Expected `eval_episodes` to be >= 0. "
                             f"Received: eval_episodes={self.eval_episodes}")
