"""A model directory's files: `agent_config.json` (the three configs) and the checkpoints."""

import dataclasses
import json
import pathlib

from attn_agents.env_config import EnvConfig
from attn_agents.env_error import EnvError
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig

CONFIG_NAME = "agent_config.json"


def save_configs(model_dir, env_config, policy_config, ppo_config) -> pathlib.Path:
    """Writes the configs of a run as `<model_dir>/agent_config.json`."""
    from attn_core.checkpoint import atomic_write

    text = json.dumps({"env": dataclasses.asdict(env_config),
                       "policy": dataclasses.asdict(policy_config),
                       "ppo": dataclasses.asdict(ppo_config)}, indent=2, sort_keys=True)
    path = pathlib.Path(model_dir) / CONFIG_NAME
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def load_configs(model_dir):
    """Reads `(EnvConfig, PolicyConfig, PPOConfig)` back.

    Raises:
        EnvError: If the file is missing or not a valid config.
    """
    path = pathlib.Path(model_dir) / CONFIG_NAME
    try:
        raw = json.loads(path.read_text())
        return (EnvConfig(**raw["env"]), PolicyConfig(**raw["policy"]), PPOConfig(**raw["ppo"]))
    except FileNotFoundError:
        raise EnvError(f"Expected a model directory written by attn_agents.train. "
                       f"Received: model_dir={str(model_dir)!r} has no {CONFIG_NAME}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise EnvError(f"Expected a valid {CONFIG_NAME}. Received: {path} ({error})") from None


def load_agent(model_dir):
    """Rebuilds the trained policy of a model directory from its latest checkpoint.

    Returns:
        `(model, env_config, policy_config, extra_state)`; `extra_state` holds the
        observation-normalization statistics (`obs_rms`) and the step counters.

    Raises:
        EnvError: If there is no config or no checkpoint.
    """
    from attn_agents.actor_critic import ActorCritic
    from attn_agents.env_factory import make_env
    from attn_core import checkpoint

    env_config, policy_config, _ = load_configs(model_dir)
    env = make_env(env_config)
    model = ActorCritic(policy_config, env.observation_space, env.action_space, name="policy")
    env.close()
    manager = checkpoint.CheckpointManager(pathlib.Path(model_dir) / "checkpoints")
    if manager.latest() is None:
        raise EnvError(f"Expected a checkpoint in {model_dir}/checkpoints. Received: none "
                       "(train it first with attn_agents.train)")
    state = manager.restore([model], prefix=True)
    return model, env_config, policy_config, state
