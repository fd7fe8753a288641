"""Agent.act: greedy and sampled actions, and the one compiled policy step they share."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from attn_agents.actor_critic import ActorCritic
from attn_agents.agent import Agent
from attn_agents.policy_config import PolicyConfig


def _agent(action_space, num_envs=64):
    tf.keras.utils.set_random_seed(0)
    model = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16),
                        gym.spaces.Box(-1, 1, (3,), np.float32), action_space)
    return model, Agent(model, num_envs=num_envs)


def test_greedy_and_sampled_acting_share_one_compiled_step():
    model, agent = _agent(gym.spaces.Discrete(3))
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)
    starts = np.zeros(64, bool)
    greedy = agent.act(obs, starts, greedy=True, commit=False)
    sampled = [agent.act(obs, starts, seed=[7, i], commit=False) for i in range(2)]
    again = agent.act(obs, starts, seed=[7, 0], commit=False)
    assert len(agent._act._concrete_by_signature) == 1  # one trace, one XLA compile

    summary, _ = model.summarize(tf.constant(obs))
    params, value = model.heads(summary)
    np.testing.assert_array_equal(greedy.action, np.argmax(params.numpy(), axis=-1))
    np.testing.assert_allclose(greedy.value, value.numpy(), atol=1e-5)
    log_softmax = tf.nn.log_softmax(params).numpy()
    for out in (greedy, *sampled):
        np.testing.assert_allclose(out.log_prob, log_softmax[np.arange(64), out.action],
                                   atol=1e-5)
    np.testing.assert_array_equal(again.action, sampled[0].action)  # same seed, same draw
    assert not np.array_equal(sampled[0].action, sampled[1].action)
    assert not np.array_equal(sampled[0].action, greedy.action)


@pytest.mark.parametrize("greedy", [True, False])
def test_continuous_actions_are_the_mean_or_a_normal_draw(greedy):
    model, agent = _agent(gym.spaces.Box(-0.5, 0.5, (2,), np.float32))
    obs = np.random.default_rng(1).uniform(-1, 1, (64, 3)).astype(np.float32)
    out = agent.act(obs, np.zeros(64, bool), greedy=greedy, seed=[3, 4])
    summary, _ = model.summarize(tf.constant(obs))
    mean = model.heads(summary)[0].numpy()
    assert out.action.shape == out.env_action.shape == (64, 2)
    if greedy:
        np.testing.assert_allclose(out.action, mean, atol=1e-5)
    else:  # log_std starts at 0: unit-variance noise around the mean
        noise = out.action - mean
        assert 0.7 < noise.std() < 1.3 and abs(noise.mean()) < 0.3
    assert np.all(np.abs(out.env_action) <= 0.5)
    np.testing.assert_allclose(out.env_action, np.clip(out.action, -0.5, 0.5))
