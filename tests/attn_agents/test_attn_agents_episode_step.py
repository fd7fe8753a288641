"""`--episode_step`: the step's index in its episode as an observation component."""

import gymnasium as gym
import numpy as np
from agent_tools import run_tool

from attn_agents.env_config import EnvConfig
from attn_agents.env_factory import make_env, make_vector_env
from attn_agents.episode_step import EpisodeStep

NO_LIMIT_ID = "EpisodeStepNoLimit-v0"


class _NoLimitEnv(gym.Env):
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, 0.0, False, False, {}


class _LimitedEnv(_NoLimitEnv):
    max_episode_length = 3  # as POPGym environments state it


if NO_LIMIT_ID not in gym.registry:
    gym.register(NO_LIMIT_ID, entry_point=_NoLimitEnv)


def _steps(env, count):
    """The observations of the reset and of `count` random steps after it."""
    obs, _ = env.reset(seed=0)
    seen = [obs]
    for _ in range(count):
        obs, *_ = env.step(env.action_space.sample())
        seen.append(obs)
    return seen


def test_a_popgym_tuple_gains_the_step_last_and_it_restarts_with_each_episode():
    env = make_env(EnvConfig("popgym-AutoencodeEasy-v0", previous_action=True,
                             episode_step=True))
    # mode, suit, previous action, first-step flag, then 0..103: Autoencode has 103 steps.
    assert env.observation_space == gym.spaces.Tuple(
        (gym.spaces.Discrete(2), gym.spaces.Discrete(4), gym.spaces.Discrete(4),
         gym.spaces.Discrete(2), gym.spaces.Discrete(104)))
    seen = _steps(env, 103)
    assert [int(o[-1]) for o in seen] == list(range(104))
    assert all(env.observation_space.contains(o) for o in seen)
    obs, _ = env.reset(seed=1)
    assert obs[-1] == 0 and obs[3] == 1  # a new episode: step 0, first-step flag set
    env.close()


def test_box_and_dict_observations_and_the_limit_caps_the_index():
    env = make_env(EnvConfig("CartPole-v1", episode_step=True))
    assert env.observation_space[1] == gym.spaces.Discrete(501)
    assert env.observation_space[0].shape == (4,)
    env.close()
    env = make_env(EnvConfig("MiniGrid-Empty-5x5-v0", episode_step=True))
    limit = env.unwrapped.max_steps  # MiniGrid: no max_episode_steps in its registration
    assert env.observation_space["episode_step"] == gym.spaces.Discrete(limit + 1)
    assert sorted(env.observation_space) == ["direction", "episode_step", "image"]
    env.close()
    # Stepped past its limit (nothing truncates it here), the index stays at the limit.
    env = EpisodeStep(_LimitedEnv())
    assert env.observation_space == gym.spaces.Tuple((gym.spaces.Discrete(3),
                                                      gym.spaces.Discrete(4)))
    assert [int(o[-1]) for o in _steps(env, 5)] == [0, 1, 2, 3, 3, 3]


def test_vector_environments_restart_the_index_at_their_own_resets():
    envs, _ = make_vector_env(EnvConfig("popgym-RepeatPreviousEasy-v0", num_envs=2,
                                        episode_step=True))
    obs, _ = envs.reset(seed=0)
    steps = [np.asarray(obs[-1]).tolist()]
    for _ in range(53):  # episodes of 51 steps: the 51st ends them, reset in the same step
        obs, *_ = envs.step(envs.action_space.sample())
        steps.append(np.asarray(obs[-1]).tolist())
    envs.close()
    assert steps == [[t, t] for t in [*range(51), 0, 1, 2]]


def test_an_environment_without_an_episode_limit_is_one_line(tmp_path):
    model_dir = tmp_path / "new"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}", f"--env_id={NO_LIMIT_ID}",
                      "--episode_step")
    result.one_line_error("known episode limit", f"env_id='{NO_LIMIT_ID}'")
    assert not model_dir.exists()
