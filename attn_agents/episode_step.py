"""`EpisodeStep`: the step's index in its episode, as one more observation component."""

import gymnasium as gym
import numpy as np

from attn_agents.env_error import EnvError


def episode_limit(env: gym.Env) -> int | None:
    """The most steps an episode of `env` can take: the registered `max_episode_steps`, a
    POPGym environment's `max_episode_length` or a MiniGrid one's `max_steps`; None when
    none is known."""
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return (limit or getattr(env.unwrapped, "max_episode_length", None)
            or getattr(env.unwrapped, "max_steps", None))


class EpisodeStep(gym.ObservationWrapper):
    """Adds the index of the current step in its episode (0 at reset) to each observation.

    A recurrent memory can count its steps; attention over a window of past steps sees only
    how far back each of them lies, not where the episode began. Tasks that ask for the card
    seen so many steps ago *as a function of the time* (POPGym's Autoencode recites in
    reverse, so its j-th answer lies 2j + 1 steps back) need the time itself, as Decision
    Transformer embeds each step's timestep. The index is a `Discrete(limit + 1)` component,
    so the attention policy gives each step a learned embedding (and the MLP a one-hot).

    A Tuple observation gains a last element; a Dict one the key "episode_step"; any other
    becomes `Tuple((observation, step))`.

    Args:
        env: An environment whose episode limit `episode_limit` knows.

    Raises:
        EnvError: If the episode limit is unknown.
    """

    KEY = "episode_step"

    def __init__(self, env: gym.Env):
        limit = episode_limit(env)
        if not limit:
            raise EnvError("Expected an environment with a known episode limit (its "
                           "max_episode_steps) for --episode_step. Received: env_id="
                           f"{env.spec.id if env.spec else env!r} without one")
        super().__init__(env)
        self.limit = int(limit)
        step = gym.spaces.Discrete(self.limit + 1)
        space = env.observation_space
        if isinstance(space, gym.spaces.Tuple):
            self.observation_space = gym.spaces.Tuple((*space.spaces, step))
        elif isinstance(space, gym.spaces.Dict):
            self.observation_space = gym.spaces.Dict({**space.spaces, self.KEY: step})
        else:
            self.observation_space = gym.spaces.Tuple((space, step))
        self._step = 0

    def reset(self, **kwargs):
        self._step = 0
        return super().reset(**kwargs)

    def step(self, action):
        self._step += 1
        return super().step(action)

    def observation(self, observation):
        step = np.int64(min(self._step, self.limit))
        if isinstance(self.env.observation_space, gym.spaces.Tuple):
            return (*observation, step)
        if isinstance(self.env.observation_space, gym.spaces.Dict):
            return {**observation, self.KEY: step}
        return (observation, step)
