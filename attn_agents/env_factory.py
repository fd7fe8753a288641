"""Environments by id: single ones for evaluation and video, vector ones for training.

MiniGrid ids are registered by importing `minigrid`, ALE ids by `ale_py`; both happen here.
POPGym ids (`popgym-...`) are registered by importing `popgym`, which happens only for those
ids. MiniGrid observations keep `image` and `direction` (the mission text is dropped). ALE
frames are preprocessed as usual (grey 84x84, frame skip 4, 4 stacked frames as channels).
"""

import contextlib
import difflib
import importlib
import os
import signal

import gymnasium as gym
import numpy as np

from attn_agents.env_config import EnvConfig
from attn_agents.env_error import EnvError
from attn_agents.episode_step import EpisodeStep
from attn_agents.mask_velocity import MaskVelocity

_registered = False
POPGYM_PREFIX = "popgym-"


def register_extra_envs() -> None:
    """Registers the MiniGrid and ALE ids with Gymnasium (once)."""
    global _registered
    if _registered:
        return
    try:
        import minigrid  # noqa: F401
    except ImportError:
        pass
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    _registered = True


# The pip command that provides a missing module an environment needs.
_PACKAGES = {
    "flax": '"gymnasium[jax]"', "jax": '"gymnasium[jax]"', "jaxlib": '"gymnasium[jax]"',
    "mujoco": '"gymnasium[mujoco]"', "Box2D": '"gymnasium[box2d]"',
    "pygame": '"gymnasium[classic-control]"', "ale_py": "ale-py", "minigrid": "minigrid",
    "popgym": "popgym",
}


def _missing_dependency(error: BaseException) -> str:
    """One line naming what to install, for an environment that failed to build."""
    if isinstance(error, ImportError) and error.name:
        top = error.name.split(".")[0]
        package = _PACKAGES.get(top, top)
        return f"it needs the {top} package, not installed here: pip install {package}"
    return " ".join(str(error).split())  # gymnasium's DependencyNotInstalled names the pip line


def _buildable(env_id: str) -> bool:
    """Whether the modules behind `env_id` import here (its optional packages are installed)."""
    entry_point = gym.spec(env_id).entry_point
    if not isinstance(entry_point, str):
        return True
    try:
        importlib.import_module(entry_point.split(":")[0])
    except (ImportError, gym.error.DependencyNotInstalled):
        return False
    except Exception:  # noqa: BLE001 -- anything else is for gym.make to report
        return True
    return True


def _register_popgym(env_id: str) -> None:
    """Imports `popgym` (which registers its ids) for a `popgym-...` id.

    Raises:
        EnvError: If the package is not installed, naming it.
    """
    try:
        import popgym  # noqa: F401
    except ImportError:
        raise EnvError(f"Expected an environment that can be built here. Received: "
                       f"env_id={env_id!r}: {_missing_dependency(ImportError(name='popgym'))}"
                       ) from None


def check_env_id(env_id: str) -> None:
    """Raises a one-line `EnvError` naming the closest registered ids if `env_id` is unknown.

    Only ids whose packages are installed are suggested.
    """
    register_extra_envs()
    if env_id.startswith(POPGYM_PREFIX):
        _register_popgym(env_id)
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=6, cutoff=0.5)
    close = [name for name in close if _buildable(name)][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EnvError(f"Expected a registered Gymnasium id. Received: env_id={env_id!r}{hint}")


def _make(env_id: str, **kwargs) -> gym.Env:
    """`gym.make`, with a missing optional package reported as a one-line `EnvError`."""
    try:
        return gym.make(env_id, **kwargs)
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        raise EnvError(f"Expected an environment that can be built here. Received: "
                       f"env_id={env_id!r}: {_missing_dependency(error)}") from None


def _observation_problem(space: gym.Space, where: str = "observation_space",
                         top: bool = True) -> str | None:
    """What the agent cannot handle in an observation space (None: nothing).

    Top level: Box of rank 1-3, Discrete, MultiDiscrete, and one level of Tuple or Dict.
    Inside a Tuple: Discrete, MultiDiscrete and Box of rank 1. Inside a Dict: Discrete,
    MultiBinary and Box of rank 1-3 (see `tokenizer_factory`).
    """
    if isinstance(space, gym.spaces.Tuple | gym.spaces.Dict):
        if not top:
            return (f"Expected at most one level of Tuple or Dict in the observation space. "
                    f"Received: {where}={space}")
        items = (space.spaces.items() if isinstance(space, gym.spaces.Dict)
                 else enumerate(space.spaces))
        if not len(space.spaces):
            return f"Expected a non-empty Tuple or Dict observation space. Received: {space}"
        for key, sub in items:
            problem = _observation_problem(sub, f"{where}[{key!r}]", top=False)
            if problem:
                return problem
            if isinstance(space, gym.spaces.Tuple) and not (
                    isinstance(sub, gym.spaces.Discrete | gym.spaces.MultiDiscrete)
                    or (isinstance(sub, gym.spaces.Box) and len(sub.shape) == 1)):
                return ("Expected Tuple observation components to be Discrete, MultiDiscrete "
                        f"or Box of rank 1. Received: {where}[{key}]={sub}")
            if isinstance(space, gym.spaces.Dict) and isinstance(sub, gym.spaces.MultiDiscrete):
                return ("Expected Dict observation fields to be Discrete, MultiBinary or Box "
                        f"(a MultiDiscrete goes in a Tuple). Received: {where}[{key!r}]={sub}")
        return None
    if isinstance(space, gym.spaces.Box) and len(space.shape) in (1, 2, 3):
        return None
    if isinstance(space, gym.spaces.Discrete):
        return None
    if isinstance(space, gym.spaces.MultiDiscrete) and len(space.nvec.shape) == 1:
        return None
    if isinstance(space, gym.spaces.MultiBinary) and not top:
        return None
    return ("Expected a Box (rank 1-3), Discrete, MultiDiscrete, Tuple or Dict observation "
            f"space. Received: {where}={space}")


def check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    """Raises `EnvError` naming the space if the agent cannot handle it.

    Supported observations: Box of rank 1 (features), 2 (entities) or 3 (images, H x W x C),
    Discrete, MultiDiscrete of rank 1, a Tuple of Discrete, MultiDiscrete and rank-1 Box, and
    a Dict of Box, Discrete and MultiBinary/Box masks; nothing nested deeper. Supported
    actions: Discrete, MultiDiscrete of rank 1 and Box of rank 1.
    """
    problem = _observation_problem(observation_space)
    if problem:
        raise EnvError(problem)
    discrete = isinstance(action_space, gym.spaces.Discrete)
    multi = (isinstance(action_space, gym.spaces.MultiDiscrete)
             and len(action_space.nvec.shape) == 1)
    box = isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
    if not (discrete or multi or box):
        raise EnvError("Expected a Discrete, MultiDiscrete (rank 1) or rank-1 Box action space. "
                       f"Received: action_space={action_space}")


class _ChannelsLast(gym.ObservationWrapper):
    """(C, H, W) stacked frames -> (H, W, C)."""

    def __init__(self, env):
        super().__init__(env)
        c, h, w = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 255, (h, w, c), np.uint8)

    def observation(self, observation):
        return np.transpose(np.asarray(observation), (1, 2, 0))


def make_env(config: EnvConfig, render_mode: str | None = None) -> gym.Env:
    """Creates one environment of `config.env_id` with the agent's wrappers.

    Args:
        config: The environment settings (`num_envs` and normalization are ignored).
        render_mode: Passed to `gym.make`, e.g. `"rgb_array"` for videos.

    Returns:
        The wrapped environment.

    Raises:
        EnvError: If the id is unknown, its optional packages are missing (the message names
            the pip command), --mask_velocity or --previous_action is used on another
            environment or a space is unsupported.
    """
    check_env_id(config.env_id)
    spec = gym.spec(config.env_id)
    kwargs = {"render_mode": render_mode} if render_mode else {}
    if render_mode == "rgb_array":
        # Frames are drawn off-screen: without a display, pygame's default video driver
        # prints "error: XDG_RUNTIME_DIR is invalid ..." although nothing is wrong.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if spec.namespace == "ALE":
        env = _make(config.env_id, frameskip=1, **kwargs)
        env = gym.wrappers.AtariPreprocessing(env, frame_skip=4, screen_size=84,
                                              grayscale_obs=True, noop_max=30)
        env = _ChannelsLast(gym.wrappers.FrameStackObservation(env, 4))
    else:
        env = _make(config.env_id, **kwargs)
    if config.mask_velocity:
        env = MaskVelocity(env)
    if config.previous_action:
        if not config.env_id.startswith(POPGYM_PREFIX):
            env.close()
            raise EnvError(f"Expected a POPGym id ({POPGYM_PREFIX}...) for --previous_action. "
                           f"Received: env_id={config.env_id!r}")
        from popgym.wrappers import Antialias, PreviousAction

        # The wrappers take the POPGym environment itself (they check its class).
        env = Antialias(PreviousAction(env.unwrapped))
    if config.episode_step:
        try:
            env = EpisodeStep(env)
        except EnvError:
            env.close()
            raise
    space = env.observation_space
    if isinstance(space, gym.spaces.Dict) and "mission" in space.spaces:  # MiniGrid
        env = gym.wrappers.FilterObservation(env, [k for k in space.spaces if k != "mission"])
    check_spaces(env.observation_space, env.action_space)
    return env


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Processes started inside ignore SIGINT (an ignored signal stays ignored across exec).

    A Ctrl-C in a terminal reaches the whole process group: the environments' subprocesses
    would die mid-rollout, while the trainer (which handles Ctrl-C by finishing the update,
    saving a checkpoint and then closing them) still needs them.
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_vector_env(config: EnvConfig, num_envs: int | None = None, training: bool = True,
                    gamma: float = 0.99):
    """Creates the vector environment of a run.

    Episodes reset in the same step they end (`AutoresetMode.SAME_STEP`): the final
    observation is in `infos["final_obs"]`. Episode returns and lengths are recorded before
    any reward scaling (`infos["episode"]`).

    Args:
        config: The environment settings.
        num_envs: Overrides `config.num_envs` (evaluation).
        training: With `False`, reward normalization is left out.
        gamma: Discount of the return whose std scales rewards (--normalize_reward).

    Returns:
        `(envs, reward_normalizer)`; the reward normalizer is Gymnasium's wrapper (its
        `.return_rms`) or `None`. Observations are not scaled here: see `ObsNormalizer`.

    Raises:
        EnvError: As for `make_env`, or --normalize_obs on a non-Box observation.
    """
    make_env(config).close()  # fails early, in this process, with a clear error
    n = num_envs or config.num_envs
    fns = [lambda: make_env(config) for _ in range(n)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if config.async_envs and n > 1:
        with _children_ignore_ctrl_c():
            envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    else:
        envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    if config.normalize_obs and not isinstance(envs.single_observation_space, gym.spaces.Box):
        envs.close()
        raise EnvError("Expected a Box observation space for --normalize_obs. "
                       f"Received: observation_space={envs.single_observation_space}")
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    reward_norm = None
    if config.normalize_reward and training:
        envs = reward_norm = gym.wrappers.vector.NormalizeReward(envs, gamma=gamma)
        envs = gym.wrappers.vector.ClipReward(envs, -10.0, 10.0)
    return envs, reward_norm
