"""Generalized advantage estimation (Schulman et al. 2016) over a rollout buffer."""

import numpy as np


def compute_gae(rewards, values, ends, next_value, gamma, gae_lambda):
    """GAE(lambda) advantages and the value targets (returns) of a rollout.

    `delta_t = r_t + gamma * V_{t+1} * (1 - end_t) - V_t` and
    `A_t = delta_t + gamma * lambda * (1 - end_t) * A_{t+1}`, with `V_T = next_value`.
    Truncated episodes are bootstrapped by the caller (`r_t += gamma * V(final obs)`), so
    `end_t` is True for both terminations and truncations.

    Args:
        rewards: float [T, N].
        values: float [T, N], V(s_t) at collection time.
        ends: bool [T, N], True where step t ended its episode.
        next_value: float [N], V of the observation after the last step.
        gamma: Discount.
        gae_lambda: Lambda.

    Returns:
        `(advantages, returns)`, both float32 [T, N]; `returns = advantages + values`.

    Raises:
        ValueError: If the shapes disagree.
    """
    rewards = np.asarray(rewards, np.float32)
    values = np.asarray(values, np.float32)
    ends = np.asarray(ends, bool)
    next_value = np.asarray(next_value, np.float32)
    if rewards.shape != values.shape or rewards.shape != ends.shape or rewards.ndim != 2 \
            or next_value.shape != rewards.shape[1:]:
        raise ValueError(
            "Expected rewards, values and ends of shape [T, N] and next_value of shape [N]. "
            f"Received: rewards.shape={rewards.shape}, values.shape={values.shape}, "
            f"ends.shape={ends.shape}, next_value.shape={next_value.shape}")
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last = np.zeros_like(next_value)
    for t in reversed(range(steps)):
        following = next_value if t == steps - 1 else values[t + 1]
        alive = 1.0 - ends[t].astype(np.float32)
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * gae_lambda * alive * last
        advantages[t] = last
    return advantages, advantages + values
