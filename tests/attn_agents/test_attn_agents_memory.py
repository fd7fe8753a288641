"""The temporal memory: reset at episode starts, and the same memory in acting and training."""

import gymnasium as gym
import numpy as np
import tensorflow as tf

from attn_agents.actor_critic import ActorCritic
from attn_agents.agent import Agent
from attn_agents.policy_config import PolicyConfig

OBS = gym.spaces.Box(-5, 5, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


def _model(memory=3, policy="attention"):
    tf.keras.utils.set_random_seed(0)
    config = PolicyConfig(policy=policy, d_model=16, num_heads=2, ff_dim=16, memory=memory)
    return ActorCritic(config, OBS, ACTIONS)


def _play(agent, observations, starts):
    return [agent.act(o[None], np.array([s]), greedy=True) for o, s in
            zip(observations, starts, strict=True)]


def test_memory_resets_at_episode_boundaries():
    model = _model()
    rng = np.random.default_rng(0)
    history, fresh = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(
        size=(2, 3)).astype(np.float32)
    with_past = Agent(model)
    outs = _play(with_past, np.concatenate([history, fresh]), [1, 0, 0, 0, 1, 0])
    alone = _play(Agent(model), fresh, [1, 0])
    for a, b in zip(outs[4:], alone, strict=True):  # after a start, the past is forgotten
        np.testing.assert_allclose(a.value, b.value, atol=1e-5)
        np.testing.assert_allclose(a.memory_weights, b.memory_weights, atol=1e-6)
    # Without the start flag the same observations see the past, and the values differ.
    continued = _play(Agent(model), np.concatenate([history, fresh]), [1, 0, 0, 0, 0, 0])
    assert abs(float(continued[4].value[0]) - float(alone[0].value[0])) > 1e-4
    # At an episode start only the current step gets weight; the window is K = 3 wide.
    np.testing.assert_allclose(outs[4].memory_weights[0], [0, 0, 1], atol=1e-6)
    assert (continued[5].memory_weights[0] > 0).all()


def test_memory_knows_the_order_of_past_steps():
    # Velocity from positions needs order: the same past steps in another order must give
    # another output (a memory without position embeddings sees only the set of steps).
    model = _model(memory=3)
    rng = np.random.default_rng(3)
    a, b, now = rng.normal(size=(3, 3)).astype(np.float32)
    first = _play(Agent(model), np.stack([a, b, now]), [1, 0, 0])[-1]
    swapped = _play(Agent(model), np.stack([b, a, now]), [1, 0, 0])[-1]
    assert abs(float(first.value[0]) - float(swapped.value[0])) > 1e-5


def test_reset_forgets_and_first_call_starts_an_episode():
    model = _model()
    obs = np.ones((1, 3), np.float32)
    agent = Agent(model)
    first = agent.act(obs, greedy=True)
    agent.act(obs, greedy=True)
    agent.reset()
    np.testing.assert_allclose(agent.act(obs, greedy=True).value, first.value, atol=1e-6)


def test_training_chunks_recompute_the_memory_used_while_acting():
    model = _model(memory=3)
    rng = np.random.default_rng(1)
    steps, starts = rng.normal(size=(7, 3)).astype(np.float32), [1, 0, 0, 1, 0, 0, 0]
    acted = _play(Agent(model), steps, starts)
    # A chunk of the last L = 3 steps with the K - 1 = 2 steps before it as prefix.
    params, values = model.sequence_forward(tf.constant(steps[None, 2:]),
                                            tf.constant(np.array(starts[2:], bool)[None]), 3)
    np.testing.assert_allclose(np.asarray(values)[0], [o.value[0] for o in acted[4:]],
                               atol=1e-5)


def test_rebuild_memory_equals_acting_through_the_steps():
    model = _model(memory=3)
    rng = np.random.default_rng(2)
    steps = rng.normal(size=(3, 3)).astype(np.float32)
    played = Agent(model)
    _play(played, steps[:2], [1, 0])
    rebuilt = Agent(model)
    rebuilt.rebuild_memory(steps[None, :2], np.array([[True, False]]))
    a = played.act(steps[2:], np.array([False]), greedy=True)
    b = rebuilt.act(steps[2:], np.array([False]), greedy=True)
    np.testing.assert_allclose(a.value, b.value, atol=1e-5)


def test_mlp_policy_with_memory_and_no_token_weights():
    model = _model(memory=2, policy="mlp")
    out = Agent(model).act(np.zeros((1, 3), np.float32), greedy=True)
    assert out.token_weights.shape == (1, 0) and out.memory_weights.shape == (1, 2)
