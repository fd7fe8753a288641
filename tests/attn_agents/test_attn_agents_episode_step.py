"""`--episode_step`: the step's time in its episode as an observation component, and how
the policies take it."""

import gymnasium as gym
import numpy as np
import tensorflow as tf
from agent_tools import run_tool

from attn_agents.actor_critic import ActorCritic
from attn_agents.env_config import EnvConfig
from attn_agents.env_factory import make_env, make_vector_env
from attn_agents.episode_step import (
    FREQUENCIES,
    EpisodeStep,
    EpisodeTime,
    split_time,
    split_time_obs,
    step_features,
    step_periods,
)
from attn_agents.policy_config import PolicyConfig

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


TIME = EpisodeTime()


def _index(features, limit):
    """The step index whose features `features` are (the nearest of 0..limit)."""
    table = step_features(np.arange(limit + 1), limit)  # [limit + 1, 2F]
    return int(np.argmin(np.abs(table - np.asarray(features)).sum(axis=-1)))


def test_the_features_tell_every_step_apart_and_a_linear_map_finds_the_mirror_step():
    limit = 103  # Autoencode
    table = step_features(np.arange(limit + 1), limit)  # [104, 16]
    assert table.shape == (limit + 1, 2 * FREQUENCIES) and table.dtype == np.float32
    np.testing.assert_allclose(table[0], [0.0] * FREQUENCIES + [1.0] * FREQUENCIES)
    distance = np.abs(table[:, None] - table[None]).sum(-1) + 10 * np.eye(limit + 1)
    assert distance.min() > 0.05  # no two steps of the episode look alike
    # Why sines: with sin/cos at the same periods, f(t)^T M f(s) = sum_i cos(w_i (t + s - c))
    # for one fixed M, which peaks at s = c - t for every t at once: "the step mirrored about
    # c" is one bilinear form, what a query and a key projection can learn together.
    c, w = 102, 2 * np.pi / step_periods(limit)
    m = np.zeros((2 * FREQUENCIES, 2 * FREQUENCIES))
    for i, wi in enumerate(w):  # rows (sin wt, cos wt), columns (sin ws, cos ws)
        cos, sin = np.cos(wi * c), np.sin(wi * c)
        m[np.ix_([i, FREQUENCIES + i], [i, FREQUENCIES + i])] = [[-cos, sin], [sin, cos]]
    scores = table @ m @ table.T  # [t, s]
    for t in range(51, 103):
        assert int(np.argmax(scores[t, : t + 1])) == c - t


def _steps(env, count):
    """The observations of the reset and of `count` random steps after it."""
    obs, _ = env.reset(seed=0)
    seen = [obs]
    for _ in range(count):
        obs, *_ = env.step(env.action_space.sample())
        seen.append(obs)
    return seen


def test_a_popgym_tuple_gains_the_time_last_and_it_restarts_with_each_episode():
    env = make_env(EnvConfig("popgym-AutoencodeEasy-v0", previous_action=True,
                             episode_step=True))
    # mode, suit, previous action, first-step flag, then the time: Autoencode has 103 steps.
    assert env.observation_space == gym.spaces.Tuple(
        (gym.spaces.Discrete(2), gym.spaces.Discrete(4), gym.spaces.Discrete(4),
         gym.spaces.Discrete(2), TIME))
    seen = _steps(env, 103)
    assert [_index(o[-1], 103) for o in seen] == list(range(104))
    np.testing.assert_array_equal(seen[5][-1], step_features(5, 103))
    assert all(env.observation_space.contains(o) for o in seen)
    obs, _ = env.reset(seed=1)
    assert _index(obs[-1], 103) == 0 and obs[3] == 1  # a new episode: step 0, first-step flag
    env.close()


def test_box_and_dict_observations_and_the_limit_caps_the_index():
    env = make_env(EnvConfig("CartPole-v1", episode_step=True))
    assert env.observation_space[1] == TIME
    assert env.observation_space[0].shape == (4,)
    env.close()
    env = make_env(EnvConfig("MiniGrid-Empty-5x5-v0", episode_step=True))
    limit = env.unwrapped.max_steps  # MiniGrid: no max_episode_steps in its registration
    assert env.observation_space["episode_step"] == TIME
    assert sorted(env.observation_space) == ["direction", "episode_step", "image"]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and _index(obs["episode_step"], limit) == 0
    env.close()
    # Stepped past its limit (nothing truncates it here), the index stays at the limit.
    env = EpisodeStep(_LimitedEnv())
    assert env.observation_space == gym.spaces.Tuple((gym.spaces.Discrete(3), TIME))
    assert [_index(o[-1], 3) for o in _steps(env, 5)] == [0, 1, 2, 3, 3, 3]


def test_vector_environments_restart_the_index_at_their_own_resets():
    envs, _ = make_vector_env(EnvConfig("popgym-RepeatPreviousEasy-v0", num_envs=2,
                                        episode_step=True))
    obs, _ = envs.reset(seed=0)
    steps = [[_index(f, 51) for f in obs[-1]]]
    for _ in range(53):  # episodes of 51 steps: the 51st ends them, reset in the same step
        obs, *_ = envs.step(envs.action_space.sample())
        steps.append([_index(f, 51) for f in obs[-1]])
    envs.close()
    assert steps == [[t, t] for t in [*range(51), 0, 1, 2]]


def test_an_environment_without_an_episode_limit_is_one_line(tmp_path):
    model_dir = tmp_path / "new"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}", f"--env_id={NO_LIMIT_ID}",
                      "--episode_step")
    result.one_line_error("known episode limit", f"env_id='{NO_LIMIT_ID}'")
    assert not model_dir.exists()


def test_split_time_finds_the_time_in_a_tuple_or_a_dict():
    box = gym.spaces.Box(-1, 1, (3,), np.float32)
    assert split_time(box) == (None, box)
    where, rest = split_time(gym.spaces.Tuple((box, EpisodeTime())))
    assert where == 1 and rest == box  # one component left: the component itself
    where, rest = split_time(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(4),
                                               EpisodeTime())))
    assert where == 2 and rest == gym.spaces.Tuple((gym.spaces.Discrete(2),
                                                    gym.spaces.Discrete(4)))
    where, rest = split_time(gym.spaces.Dict({"image": box, "episode_step": EpisodeTime()}))
    assert where == "episode_step" and list(rest.spaces) == ["image"]
    obs = (np.zeros((2, 3)), np.ones((2, 16)))
    rest_obs, time = split_time_obs(obs, 1)
    assert rest_obs is obs[0] and time is obs[1]


def _policy(space, policy="attention"):
    tf.keras.utils.set_random_seed(0)
    return ActorCritic(PolicyConfig(policy=policy, d_model=16, num_heads=2, ff_dim=16,
                                    memory=4), space, gym.spaces.Discrete(4))


def test_the_attention_policy_adds_the_time_to_the_summary_instead_of_a_token():
    env = make_env(EnvConfig("popgym-AutoencodeEasy-v0", previous_action=True,
                             episode_step=True))
    model = _policy(env.observation_space)
    # Four tokens (mode, suit, previous action, first-step flag); the time is not one.
    assert model.layout.labels == ("obs[0]", "obs[1]", "obs[2]", "obs[3]")
    obs = _steps(env, 60)
    batch = tuple(np.stack([o[i] for o in obs]) for i in range(5))  # [61, ...] per component
    summary, token_weights = model.summarize(batch)
    assert tuple(summary.shape) == (61, 16) and tuple(token_weights.shape) == (61, 4)
    # Step 55's observation at step 55's time and at step 60's: the summaries differ by
    # exactly the difference of the projected times, the time's only path.
    same = tuple(np.stack([b[55], b[55]]) if i < 4 else np.stack([b[55], b[60]])
                 for i, b in enumerate(batch))
    pair, _ = model.summarize(same)
    projected = model.time_projection(same[4])
    np.testing.assert_allclose(pair[0] - pair[1], projected[0] - projected[1], atol=1e-5)
    assert float(np.abs(pair[0] - pair[1]).max()) > 1e-3
    env.close()


def test_the_mlp_takes_the_time_as_an_input_and_no_projection_is_made():
    env = make_env(EnvConfig("popgym-AutoencodeEasy-v0", previous_action=True,
                             episode_step=True))
    model = _policy(env.observation_space, policy="mlp")
    assert model.time_projection is None
    # 2 + 4 + 4 + 2 one-hot inputs and the 16 time features.
    assert model.torso.kernel.shape == (12 + 2 * FREQUENCIES, 16)
    env.close()


def test_a_memory_policy_with_the_time_trains_reloads_and_plots(tmp_path):
    """Train, reload and draw a policy whose observation is a Tuple with the time (a Box
    among Discretes: no image to draw, and a summary with the projected time added)."""
    model_dir = tmp_path / "run"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}",
                      "--env_id=popgym-AutoencodeEasy-v0", "--episode_step", "--memory=4",
                      "--d_model=16", "--num_heads=2", "--ff_dim=16", "--num_envs=2",
                      "--num_steps=16", "--chunk_length=8", "--update_epochs=1",
                      "--total_timesteps=64", "--eval_episodes=1", "--nojit_compile",
                      "--noprogress")
    assert result.returncode == 0, result.stderr[-3000:]
    plot = tmp_path / "attention.png"
    result = run_tool("attn_agents.evaluate", f"--model_dir={model_dir}", "--episodes=1",
                      f"--attention_plot={plot}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "popgym-AutoencodeEasy-v0" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
