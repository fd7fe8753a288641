"""`EpisodeStep`: the step's time in its episode, as one more observation component."""

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


FREQUENCIES = 8


def step_periods(limit):
    """The `FREQUENCIES` periods of `step_features`, in steps: geometric from 4 to
    `2 * limit`, float64 [FREQUENCIES]."""
    return 4.0 * (max(limit, 2) / 2.0) ** (np.arange(FREQUENCIES) / (FREQUENCIES - 1))


def step_features(step, limit):
    """Sines and cosines of the step index `t` at the `step_periods(limit)` (the
    Transformer's position encoding, laid over one episode).

    Args:
        step: int [...], indices from 0.
        limit: The episode limit.

    Returns:
        float32 [..., 2 * FREQUENCIES]: `sin(w_i t)` then `cos(w_i t)`.
    """
    angles = np.asarray(step, np.float64)[..., None] * (2 * np.pi / step_periods(limit))
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1).astype(np.float32)


class EpisodeTime(gym.spaces.Box):
    """The space of `step_features`: a Box the attention policy recognizes as the time."""

    def __init__(self):
        super().__init__(-1.0, 1.0, (2 * FREQUENCIES,), np.float32)


def split_time(space: gym.Space):
    """Where an observation of `space` carries the time, and the space of the rest.

    Returns:
        `(where, rest)`: None and `space` when it holds no `EpisodeTime`; else the Tuple index
        or Dict key of the time, and the space without it (a Tuple of one component becomes
        that component).
    """
    if isinstance(space, gym.spaces.Tuple):
        where = [i for i, sub in enumerate(space.spaces) if isinstance(sub, EpisodeTime)]
        if where:
            rest = [sub for i, sub in enumerate(space.spaces) if i != where[0]]
            return where[0], rest[0] if len(rest) == 1 else gym.spaces.Tuple(rest)
    if isinstance(space, gym.spaces.Dict):
        where = [k for k, sub in space.spaces.items() if isinstance(sub, EpisodeTime)]
        if where:
            return where[0], gym.spaces.Dict({k: sub for k, sub in space.spaces.items()
                                              if k != where[0]})
    return None, space


def split_time_obs(obs, where):
    """`(rest, time)` of a batch of observations, `where` from `split_time` (not None); the
    rest takes the form of `split_time`'s rest space."""
    if isinstance(obs, dict):
        return {k: v for k, v in obs.items() if k != where}, obs[where]
    rest = [x for i, x in enumerate(obs) if i != where]
    return (rest[0] if len(rest) == 1 else tuple(rest)), obs[where]


class EpisodeStep(gym.ObservationWrapper):
    """Adds the time of the current step in its episode (step 0 at reset) to each observation.

    A recurrent memory can count its steps; attention over a window of past steps sees only
    how far back each of them lies, not where the episode began. Tasks that ask for the card
    seen so many steps ago *as a function of the time* (POPGym's Autoencode recites in
    reverse, so its j-th answer lies 2j steps back) need the time itself, as Decision
    Transformer embeds each step's timestep.

    The time is `step_features(t, limit)`, an `EpisodeTime` component (a Box) that the
    attention policy projects and adds to the step's summary, as a Transformer adds position
    encodings to its token embeddings, rather than a `Discrete` index with a learned
    embedding per index pooled as one more token: products of sines of `t` and of `s` are
    a fixed linear map away from `cos(w (t + s - c))`, so one pair of query and key
    projections can learn "attend to the step at `c - t`" for every `t` at once, where a
    table learns each index from the few times it is seen (once an episode). Added to the
    summary, the time does not compete with the observation's tokens for the pooling's
    weights. docs/agents/memory.md compares the choices on Autoencode.

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
        step = EpisodeTime()
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
        step = step_features(min(self._step, self.limit), self.limit)
        if isinstance(self.env.observation_space, gym.spaces.Tuple):
            return (*observation, step)
        if isinstance(self.env.observation_space, gym.spaces.Dict):
            return {**observation, self.KEY: step}
        return (observation, step)
