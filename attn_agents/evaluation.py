"""Greedy evaluation episodes of a policy, with the training run's observation scaling."""

import dataclasses

import numpy as np

from attn_agents.agent import Agent
from attn_agents.env_factory import make_vector_env
from attn_agents.obs_normalizer import ObsNormalizer


def normalize_obs(obs, obs_rms):
    """Scales observations with a run's saved `ObsNormalizer` state (None: unchanged)."""
    if not obs_rms:
        return obs
    return ObsNormalizer(np.shape(obs_rms["mean"]), obs_rms)(obs)


def evaluate_policy(model, env_config, episodes, obs_rms=None, seed=0, greedy=True,
                    max_envs=20, jit_compile=True):
    """Plays `episodes` episodes and returns their undiscounted returns and lengths.

    Episodes are split evenly over up to `max_envs` parallel environments, each playing its
    quota to the end, so short episodes are not over-represented.

    Args:
        model: An `ActorCritic`.
        env_config: The run's `EnvConfig` (rewards are never normalized here).
        episodes: How many episodes.
        obs_rms: Observation statistics of the run (with --normalize_obs).
        seed: Seed of the evaluation environments.
        greedy: Take the mode of the action distribution.
        max_envs: Most parallel environments.
        jit_compile: XLA-compile the policy step (`Agent`).

    Returns:
        `(returns, lengths)`: float [episodes] and int [episodes].
    """
    n = max(1, min(episodes, max_envs))
    config = dataclasses.replace(env_config, normalize_obs=False, normalize_reward=False,
                                 async_envs=False)
    envs, _ = make_vector_env(config, num_envs=n, training=False)
    quota = np.full(n, episodes // n) + (np.arange(n) < episodes % n)
    agent = Agent(model, num_envs=n, jit_compile=jit_compile)
    obs, _ = envs.reset(seed=seed)
    starts = np.ones(n, bool)
    running, lengths_now = np.zeros(n), np.zeros(n, np.int64)
    returns, lengths = [], []
    done_count = np.zeros(n, np.int64)
    rng = np.random.default_rng(seed)
    while (done_count < quota).any():
        out = agent.act(normalize_obs(obs, obs_rms), starts, greedy=greedy,
                        seed=rng.integers(0, 2**31 - 1, size=2))
        obs, reward, terminated, truncated, _ = envs.step(out.env_action)
        running += reward
        lengths_now += 1
        starts = np.logical_or(terminated, truncated)
        for i in np.flatnonzero(starts):
            if done_count[i] < quota[i]:
                returns.append(running[i])
                lengths.append(lengths_now[i])
                done_count[i] += 1
            running[i], lengths_now[i] = 0.0, 0
    envs.close()
    return np.asarray(returns, np.float64), np.asarray(lengths, np.int64)
