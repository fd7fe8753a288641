"""`record_episode`: one episode of a policy, step by step, with where it looked."""

import numpy as np
import tensorflow as tf

from attn_agents.agent import Agent
from attn_agents.env_factory import make_env
from attn_agents.evaluation import normalize_obs


def record_episode(model, env_config, obs_rms, seed, render, max_steps, greedy=True,
                   jit_compile=True):
    """Plays one episode in a single environment, keeping every step's attention.

    Args:
        model: An `ActorCritic`.
        env_config: The run's `EnvConfig`.
        obs_rms: Observation statistics of the run (with --normalize_obs), or None.
        seed: Seed of the environment's reset (the same seed plays the same episode).
        render: Also keep the rendered frames (`render_mode="rgb_array"`).
        max_steps: Stop after this many steps.
        greedy: Take the most likely action (else sample).
        jit_compile: XLA-compile the policy step (as `Agent`).

    Returns:
        `(frames, observations, token_weights, memory_weights, total)`: the rendered frames
        (empty without `render`), the raw observations, per step the [T] pooling weights
        over the tokens and the [K] weights over the memory (oldest first, as `Agent.act`
        gives them), and the episode's return.
    """
    env = make_env(env_config, render_mode="rgb_array" if render else None)
    agent = Agent(model, num_envs=1, jit_compile=jit_compile)
    obs, _ = env.reset(seed=seed)
    frames, observations, token_w, memory_w, total = [], [], [], [], 0.0
    try:
        for _ in range(max_steps):
            if render:
                frames.append(env.render())
            # Dicts and tuples (Dict, Tuple spaces) keep their structure.
            batch = normalize_obs(tf.nest.map_structure(lambda v: np.asarray(v)[None], obs),
                                  obs_rms)
            out = agent.act(batch, greedy=greedy)
            observations.append(obs)
            token_w.append(out.token_weights[0])
            memory_w.append(out.memory_weights[0])
            obs, reward, terminated, truncated, _ = env.step(out.env_action[0])
            total += float(reward)
            if terminated or truncated:
                break
    finally:
        env.close()
    return frames, observations, token_w, memory_w, total
