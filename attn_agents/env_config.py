"""The environment settings of a run, a frozen config the library takes."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which environment, how many copies, and how its observations and rewards are scaled.

    Attributes:
        env_id: A registered Gymnasium id (MiniGrid and ALE ids are registered on import).
        num_envs: Parallel environments N of the vector environment.
        async_envs: Step the environments in subprocesses (`AsyncVectorEnv`) instead of in
            turn.
        normalize_obs: Running mean/std normalization of Box observations.
        normalize_reward: Scale rewards by the running std of the discounted return.
        mask_velocity: CartPole only: hide the cart and pole velocities (partially observable).
        previous_action: POPGym only: add the previous action and a first-step flag to each
            observation (popgym's PreviousAction and Antialias wrappers), as the POPGym
            paper's runs do; MineSweeper, Battleship, Concentration and the bandit need it.
        episode_step: Add the step's time in its episode (sines and cosines of its index,
            as a Transformer encodes positions), for attention memory on tasks whose answer
            depends on the time (Decision Transformer's timestep embedding); needs a known
            episode limit.
    """

    env_id: str = "CartPole-v1"
    num_envs: int = 8
    async_envs: bool = False
    normalize_obs: bool = False
    normalize_reward: bool = False
    mask_velocity: bool = False
    previous_action: bool = False
    episode_step: bool = False

    def __post_init__(self):
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"Expected `env_id` to be a non-empty string. "
                             f"Received: env_id={self.env_id!r}")
        if isinstance(self.num_envs, bool) or not isinstance(self.num_envs, int) \
                or self.num_envs < 1:
            raise ValueError(f"Expected `num_envs` to be a positive integer. "
                             f"Received: num_envs={self.num_envs!r}")
