"""`ObsNormalizer`: running mean/std scaling of Box observations, shared by all environments.

Gymnasium's vector `NormalizeObservation` cannot wrap environments that reset in the step
they end (`AutoresetMode.SAME_STEP`, whose final observations sit unscaled in the infos),
so the trainer scales observations itself, with the same statistics for both.
"""

import numpy as np
from gymnasium.wrappers.utils import RunningMeanStd

CLIP = 10.0


class ObsNormalizer:
    """`clip((obs - mean) / sqrt(var + 1e-8), -10, 10)` with running statistics.

    Args:
        shape: The single observation's shape.
        state: Optional `state()` of a previous normalizer to continue from.
    """

    def __init__(self, shape, state=None):
        self.rms = RunningMeanStd(shape=tuple(shape))
        if state:
            self.load(state)

    def update(self, obs) -> None:
        """Adds a batch [N, ...] of raw observations to the statistics."""
        self.rms.update(np.asarray(obs, np.float64))

    def __call__(self, obs):
        """Scales a batch [N, ...] of raw observations (float32)."""
        scaled = (np.asarray(obs) - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return np.clip(scaled, -CLIP, CLIP).astype(np.float32)

    def state(self) -> dict:
        """JSON-serializable statistics."""
        return {"mean": np.asarray(self.rms.mean).tolist(),
                "var": np.asarray(self.rms.var).tolist(), "count": float(self.rms.count)}

    def load(self, state: dict) -> None:
        """Restores `state()`."""
        self.rms.mean = np.asarray(state["mean"], np.float64)
        self.rms.var = np.asarray(state["var"], np.float64)
        self.rms.count = float(state["count"])
