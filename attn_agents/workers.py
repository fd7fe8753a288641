"""How a multi-worker PPO run shares its work: each worker's environments.

Under `MultiWorkerMirroredStrategy` every worker process steps its own vector environment
and the learner update runs under the strategy. The run's sizes stay global: `num_envs` is
the number of environments of all workers together, split evenly between them.
"""

import dataclasses

from attn_agents.env_error import EnvError
from attn_core import strategy


@dataclasses.dataclass(frozen=True)
class WorkerShare:
    """This process's part of a (possibly multi-worker) run.

    Attributes:
        index: The worker index (0, the chief, writes the model directory).
        count: The number of workers (1 without `MultiWorkerMirroredStrategy`).
        num_envs: The environments this worker steps (`EnvConfig.num_envs / count`).
        env_seed_offset: Added to the run's environment seeds, `index * num_envs`: the
            workers' environments are seeded like the environments `index * num_envs ...` of
            one process stepping all of them, so no two workers play the same episodes.
    """

    index: int
    count: int
    num_envs: int
    env_seed_offset: int

    @property
    def chief(self) -> bool:
        """Whether this worker writes the model directory (`attn_core.strategy.is_chief`)."""
        return self.index == 0


def worker_share(num_envs, dist) -> WorkerShare:
    """Splits the run's `num_envs` environments evenly between the workers of `dist`.

    Raises:
        EnvError: If `num_envs` is not a multiple of the number of workers.
    """
    index, count = strategy.worker_info(dist)
    if num_envs % count:
        raise EnvError(f"Expected --num_envs (all workers' environments together) to be a "
                       f"multiple of the {count} workers. Received: num_envs={num_envs}")
    local = num_envs // count
    return WorkerShare(index=index, count=count, num_envs=local, env_seed_offset=index * local)
