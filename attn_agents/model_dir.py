"""A model directory's files: `agent_config.json` (the run's configs), the checkpoints and,
with `eval_every`, the best periodic evaluation's policy in `best/`.

`agent_config.json` holds `{"env": EnvConfig, "policy": PolicyConfig, "ppo": PPOConfig,
"run": {"seed": ..., "precision": ...}}`; `precision` is the resolved dtype policy of the
latest run. On resume the saved config wins (`reconcile`): an explicit flag that differs from
it is an error, except the schedule (`SCHEDULE`), which may change.
"""

import dataclasses
import pathlib
import sys
from collections.abc import Callable, Collection

from attn_agents.env_config import EnvConfig
from attn_agents.env_error import EnvError
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_core import model_dir as core_model_dir
from attn_core.errors import UserError

CONFIG_NAME = "agent_config.json"
CHECKPOINTS = "checkpoints"
# The policy of the best periodic evaluation (a checkpoint folder: the model's weights, and in
# its state the observation statistics, the update, the step and the return it was chosen on).
BEST = "best"
# The policies a model directory keeps: its newest checkpoint's, and the best one's.
POLICY_WEIGHTS = {"final": CHECKPOINTS, "best": BEST}
# Settings that may change when a run is resumed: how long and how fast it trains, how often
# it checkpoints, how it steps its environments and how much it evaluates. Every other
# setting defines the model and its training problem.
SCHEDULE = ("total_timesteps", "learning_rate", "anneal_lr", "checkpoint_every",
            "eval_episodes", "eval_every", "eval_every_episodes", "async_envs")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings a model directory keeps: the three configs and the seed."""

    env: EnvConfig
    policy: PolicyConfig
    ppo: PPOConfig
    seed: int = 0

    def flat(self) -> dict:
        """`{field: value}` over the three configs and `seed` (their field names differ)."""
        return {**dataclasses.asdict(self.env), **dataclasses.asdict(self.policy),
                **dataclasses.asdict(self.ppo), "seed": self.seed}

    @classmethod
    def from_flat(cls, values: dict) -> "RunConfig":
        def pick(config_cls):
            return config_cls(**{f.name: values[f.name] for f in dataclasses.fields(config_cls)
                                 if f.name in values})

        return cls(pick(EnvConfig), pick(PolicyConfig), pick(PPOConfig),
                   int(values.get("seed", 0)))


def save_configs(model_dir, env_config, policy_config, ppo_config, seed=None,
                 precision=None) -> pathlib.Path:
    """Writes the configs of a run as `<model_dir>/agent_config.json` (atomically)."""
    run = {k: v for k, v in (("seed", seed), ("precision", precision)) if v is not None}
    path = pathlib.Path(model_dir) / CONFIG_NAME
    core_model_dir.write_json(path, {"env": dataclasses.asdict(env_config),
                                     "policy": dataclasses.asdict(policy_config),
                                     "ppo": dataclasses.asdict(ppo_config), "run": run})
    return path


def _read(model_dir) -> dict | None:
    path = pathlib.Path(model_dir) / CONFIG_NAME
    raw = core_model_dir.read_json(path, CONFIG_NAME)
    if raw is not None and not (isinstance(raw, dict)
                                and all(isinstance(raw.get(k), dict)
                                        for k in ("env", "policy", "ppo"))):
        raise EnvError(f"Expected a valid {CONFIG_NAME}. Received: {path} (no env, policy "
                       "and ppo objects)")
    return raw


def read_saved(model_dir) -> dict | None:
    """The flat saved settings of a model directory (`RunConfig.flat` keys; older
    directories lack `seed`, and their fields that are newer than them read as the
    defaults), or None when it holds no run yet. Reads only.

    Raises:
        EnvError: If `agent_config.json` exists but is not a valid config.
    """
    raw = _read(model_dir)
    if raw is None:
        return None
    # A field newer than the directory takes its default, the behaviour of the runs made
    # before it existed (e.g. `memory_gate`: "none"), so an explicit flag is checked
    # against that rather than silently replacing it.
    defaults = {f.name: f.default for config in (EnvConfig, PolicyConfig, PPOConfig)
                for f in dataclasses.fields(config)}
    flat = {**defaults, **raw["env"], **raw["policy"], **raw["ppo"]}
    if "seed" in raw.get("run", {}):
        flat["seed"] = raw["run"]["seed"]
    return flat


def reconcile(model_dir, saved: dict | None, given: RunConfig, explicit: Collection[str],
              log: Callable[[str], object] = print) -> RunConfig:
    """The settings to run with: `given` for a new run; on resume the saved ones, with the
    explicit schedule changes (each logged).

    Args:
        model_dir: The directory, named in the error.
        saved: `read_saved(model_dir)`.
        given: The settings from the command line (or the caller).
        explicit: The settings given explicitly (flags on the command line).
        log: Where schedule changes are reported.

    Raises:
        UserError: If an explicit setting outside `SCHEDULE` differs from the saved one (each
            is named with both values); nothing is written.
    """
    merged = core_model_dir.reconcile_config(
        saved, given.flat(), explicit, may_change=SCHEDULE, where=f"--model_dir={model_dir}",
        log=log)
    try:
        return RunConfig.from_flat(merged)
    except (TypeError, ValueError) as error:
        raise UserError(f"Expected a valid {pathlib.Path(model_dir) / CONFIG_NAME}. "
                        f"Received: {error}") from None


def load_configs(model_dir):
    """Reads `(EnvConfig, PolicyConfig, PPOConfig)` back.

    Raises:
        EnvError: If the file is missing or not a valid config.
    """
    path = pathlib.Path(model_dir) / CONFIG_NAME
    raw = _read(model_dir)
    if raw is None:
        raise EnvError(f"Expected a model directory written by attn_agents.train. "
                       f"Received: model_dir={str(model_dir)!r} has no {CONFIG_NAME}")
    try:
        return (EnvConfig(**raw["env"]), PolicyConfig(**raw["policy"]), PPOConfig(**raw["ppo"]))
    except (ValueError, TypeError) as error:
        raise EnvError(f"Expected a valid {CONFIG_NAME}. Received: {path} ({error})") from None


def require_best(model_dir) -> pathlib.Path:
    """The folder of a model directory's best policy (`best/`). Reads only.

    Raises:
        EnvError: If the directory keeps no best policy (its run had no `eval_every`).
    """
    from attn_core import checkpoint

    path = pathlib.Path(model_dir) / BEST
    if checkpoint.CheckpointManager(path, read_only=True).latest() is None:
        raise EnvError(f"Expected a best policy in {path} for --policy_weights=best. Received: "
                       "none (train with --eval_every > 0 to keep one)")
    return path


def load_agent(model_dir, log: Callable[[str], object] | None = None,
               policy_weights: str = "final"):
    """Rebuilds the trained policy of a model directory from its newest intact checkpoint.

    Reads only: a damaged newest checkpoint is skipped with one line through `log` (default:
    stderr).

    Args:
        model_dir: The model directory.
        log: Where the notices go.
        policy_weights: "final", the newest checkpoint's policy, or "best", the best periodic
            evaluation's (`best/`).

    Returns:
        `(model, env_config, policy_config, extra_state)`; `extra_state` holds the
        observation-normalization statistics (`obs_rms`) and the step counters (and, for
        "best", `selection_return`, the periodic evaluation's return it was chosen on).

    Raises:
        EnvError: If there is no config or no checkpoint (or no best policy).
        UserError: If no checkpoint is intact, or it holds another model.
    """
    from attn_agents.actor_critic import ActorCritic
    from attn_agents.env_factory import make_env
    from attn_core import checkpoint

    if policy_weights not in POLICY_WEIGHTS:
        raise ValueError(f"Expected `policy_weights` in {sorted(POLICY_WEIGHTS)}. Received: "
                         f"policy_weights={policy_weights!r}")
    env_config, policy_config, _ = load_configs(model_dir)
    if policy_weights == "best":
        require_best(model_dir)
    folder = pathlib.Path(model_dir) / POLICY_WEIGHTS[policy_weights]
    env = make_env(env_config)
    model = ActorCritic(policy_config, env.observation_space, env.action_space, name="policy")
    env.close()
    manager = checkpoint.CheckpointManager(
        folder, read_only=True,
        log=log or (lambda message: print(message, file=sys.stderr, flush=True)))
    state = manager.restore({"model": model})
    if state is None:
        raise EnvError(f"Expected a checkpoint in {model_dir}/{CHECKPOINTS}. Received: none "
                       "(train it first with attn_agents.train)")
    return model, env_config, policy_config, state
