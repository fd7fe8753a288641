"""POPGym and its spaces: MultiDiscrete actions, discrete and tuple observations, the memory
lag on RepeatPrevious, and the one-line errors of unsupported input."""

import json
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from agent_tools import run_tool

from attn_agents.actor_critic import ActorCritic
from attn_agents.agent import Agent
from attn_agents.env_config import EnvConfig
from attn_agents.env_error import EnvError
from attn_agents.env_factory import check_spaces, make_env
from attn_agents.memory_lag import memory_lag_profile
from attn_agents.multi_categorical import multi_categorical
from attn_agents.policy_config import PolicyConfig

NVEC = [2, 3, 4]


def test_multi_categorical_is_the_product_of_its_components():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(5, sum(NVEC))), tf.float32)
    dist = multi_categorical(logits, NVEC)
    parts = [tfp.distributions.Categorical(logits=part)
             for part in tf.split(logits, NVEC, axis=-1)]
    actions = np.stack([rng.integers(0, n, size=5) for n in NVEC], axis=1)  # [5, 3]
    np.testing.assert_allclose(
        dist.log_prob(actions), sum(p.log_prob(actions[:, i]) for i, p in enumerate(parts)),
        atol=1e-5)
    np.testing.assert_allclose(dist.entropy(), sum(p.entropy() for p in parts), atol=1e-5)
    np.testing.assert_array_equal(dist.mode(), np.stack([p.mode() for p in parts], axis=1))
    # Padding classes are never drawn: each component stays below its own size.
    samples = np.asarray(dist.sample(2000, seed=(1, 2)))  # [2000, 5, 3]
    assert samples.shape == (2000, 5, 3)
    assert (samples.max(axis=(0, 1)) == np.array(NVEC) - 1).all() and samples.min() == 0


def test_multi_discrete_actions_through_the_agent():
    space = gym.spaces.MultiDiscrete(NVEC, start=[1, 0, -2])
    model = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=2),
                        gym.spaces.Box(-1, 1, (3,), np.float32), space)
    assert model.action_shape == (3,) and model.action_size == 9
    out = Agent(model, num_envs=4).act(np.zeros((4, 3), np.float32), seed=3)
    assert out.action.shape == (4, 3) and out.log_prob.shape == (4,)
    assert all(space.contains(a) for a in out.env_action)  # shifted by the space's start
    np.testing.assert_array_equal(out.env_action - out.action, [[1, 0, -2]] * 4)


def test_mlp_flattens_discrete_parts_one_hot():
    space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiDiscrete([3, 2]),
                              gym.spaces.Box(-1, 1, (2,), np.float32)))
    model = ActorCritic(PolicyConfig(policy="mlp", d_model=8), space, gym.spaces.Discrete(2))
    obs = (np.array([1]), np.array([[2, 0]]), np.array([[0.5, -0.25]], np.float32))
    np.testing.assert_allclose(model._flatten(obs, space),
                               [[0, 1, 0, 0, 1, 1, 0, 0.5, -0.25]])
    out = Agent(model).act(tuple(np.asarray(x) for x in obs), greedy=True)
    assert out.action.shape == (1,)


@pytest.mark.parametrize("space, fragment", [
    (gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Tuple((gym.spaces.Discrete(2),)))),
     "at most one level of Tuple or Dict"),
    (gym.spaces.Dict({"a": gym.spaces.Dict({"b": gym.spaces.Discrete(2)})}),
     "at most one level of Tuple or Dict"),
    (gym.spaces.Tuple((gym.spaces.Box(0, 1, (2, 2)),)), "Received: observation_space[0]=Box"),
    (gym.spaces.MultiBinary(3), "Received: observation_space=MultiBinary"),
], ids=["tuple_in_tuple", "dict_in_dict", "image_in_tuple", "multibinary"])
def test_unsupported_observation_spaces_are_named(space, fragment):
    with pytest.raises(EnvError, match=None) as info:
        check_spaces(space, gym.spaces.Discrete(2))
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_previous_action_appends_the_action_and_a_first_step_flag():
    env = make_env(EnvConfig("popgym-MineSweeperEasy-v0", previous_action=True))
    assert env.observation_space == gym.spaces.Tuple(
        (gym.spaces.Discrete(3), gym.spaces.MultiDiscrete([4, 4]), gym.spaces.Discrete(2)))
    obs, _ = env.reset(seed=0)
    assert obs[2] == 1 and list(obs[1]) == [0, 0]  # the first step: no action yet
    obs, *_ = env.step(np.array([2, 3]))
    assert obs[2] == 0 and list(obs[1]) == [2, 3]
    env.close()


def test_memory_lag_profile_of_synthetic_weights():
    k, lag = 5, 3
    weights = np.full((12, k), 0.1)
    weights[:, k - 1 - lag] = 0.6  # every step looks `lag` steps back
    weights[:k - 1] = 0.0
    weights[:k - 1, -1] = 1.0  # the first steps of an episode: only the current one counts
    peak, profile = memory_lag_profile(weights)
    assert peak == lag
    np.testing.assert_allclose(profile, [0.1, 0.1, 0.1, 0.6, 0.1])
    with pytest.raises(ValueError, match="Received: shape=.3, 5."):
        memory_lag_profile(weights[:3])


def test_popgym_without_the_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "popgym", None)  # `import popgym` fails
    model_dir = tmp_path / "run"
    run_tool("attn_agents.train", f"--model_dir={model_dir}",
             "--env_id=popgym-RepeatPreviousEasy-v0").one_line_error(
        "env_id='popgym-RepeatPreviousEasy-v0'", "popgym package", "pip install popgym")
    assert not model_dir.exists()


def test_minesweeper_multidiscrete_actions_train(tmp_path):
    """A tiny run on POPGym's MultiDiscrete actions (the MLP, the cheapest): rollout,
    update, checkpoint, greedy evaluation."""
    model_dir = tmp_path / "run"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}",
                      "--env_id=popgym-MineSweeperEasy-v0", "--policy=mlp", "--d_model=16",
                      "--num_envs=2", "--num_steps=16", "--update_epochs=1",
                      "--total_timesteps=64", "--eval_episodes=2", "--nojit_compile",
                      "--noprogress")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["updates"] == 2 and metrics["eval_episodes"] == 2
    assert -1.0 <= metrics["eval_mean_return"] <= 1.0  # POPGym's scaled returns


def test_repeat_previous_memory_peaks_at_the_asked_lag(repeat_previous_dir, tmp_path):
    """RepeatPreviousEasy (k = 4) rewards naming the card 3 steps before the current one: the
    trained policy solves it and its memory weight peaks 3 steps back."""
    metrics = json.loads((repeat_previous_dir / "metrics.json").read_text())
    assert metrics["eval_mean_return"] >= 0.9, metrics
    plot = tmp_path / "attention.png"
    result = run_tool("attn_agents.evaluate", f"--model_dir={repeat_previous_dir}",
                      "--episodes=0", f"--attention_plot={plot}")
    assert result.returncode == 0, result.stderr
    assert "memory: the weight peaks 3 steps back" in result.stdout, result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
