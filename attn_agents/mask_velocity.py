"""`MaskVelocity`: CartPole without its velocities, a partially observable task."""

import gymnasium as gym
import numpy as np

from attn_agents.env_error import EnvError

KEPT = (0, 2)  # cart position, pole angle; velocities (1, 3) are hidden.


class MaskVelocity(gym.ObservationWrapper):
    """Keeps only the cart position and the pole angle of CartPole's observation.

    The observation becomes `[x, theta]` (float32, shape `(2,)`), so a policy must infer the
    velocities from its past observations.

    Args:
        env: A CartPole environment.

    Raises:
        EnvError: If `env` is not CartPole.
    """

    def __init__(self, env: gym.Env):
        if type(env.unwrapped).__name__ != "CartPoleEnv":
            raise EnvError(
                "Expected a CartPole environment for --mask_velocity. "
                f"Received: env_id={env.spec.id if env.spec else env!r}"
            )
        super().__init__(env)
        low, high = env.observation_space.low[list(KEPT)], env.observation_space.high[list(KEPT)]
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, np.float32)[list(KEPT)]
