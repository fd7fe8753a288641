"""`memory_lag_profile`: how much attention a policy gives each step back in its memory."""

import numpy as np


def memory_lag_profile(memory_weights):
    """The mean memory weight per lag over one episode, and the lag where it peaks.

    Only steps whose whole window lies in the episode count (the first K - 1 steps of an
    episode can attend to fewer steps, which would tilt the mean towards short lags).

    Example: a policy that always looks 3 steps back, K = 5 -> `(3, [0, 0, 0, 1, 0])`.

    Args:
        memory_weights: [S, K] weights of an episode's S steps (`ActOutput.memory_weights`
            step by step), oldest first, the current step last.

    Returns:
        `(peak_lag, profile)`: the int lag (0 = the current step, K - 1 = the oldest) with the
        most weight, and float [K], the mean weight at each lag, lag 0 first.

    Raises:
        ValueError: If the weights are not [S, K] with S >= K > 0 (no full window).
    """
    weights = np.asarray(memory_weights, np.float64)
    if weights.ndim != 2 or not 0 < weights.shape[1] <= weights.shape[0]:
        raise ValueError("Expected [S, K] memory weights of an episode with S >= K > 0 (at "
                         f"least one full window). Received: shape={weights.shape}")
    k = weights.shape[1]
    profile = weights[k - 1:].mean(axis=0)[::-1]  # lag 0 (current step) first
    return int(np.argmax(profile)), profile
