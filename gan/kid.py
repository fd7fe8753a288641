"""Kernel Inception Distance: the unbiased MMD² with a cubic polynomial kernel
(Bińkowski et al. 2018)."""

import numpy as np


def polynomial_kernel(x, y) -> np.ndarray:
    """k(x, y) = (xᵀy / D + 1)³ for x [N, D], y [M, D] → [N, M]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(features1, features2, num_subsets=100, subset_size=1000,
                              seed=0) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased MMD² over random subsets.

    Args:
        features1: [N1, D], e.g. generated.
        features2: [N2, D], e.g. real.
        num_subsets: subsets drawn (100 in the paper's code).
        subset_size: examples per subset, capped at min(N1, N2) (1000 in the paper's code).
        seed: of the subset draws.

    Returns:
        (mean, std) of the subset MMD² estimates.
    """
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"Expected at least 2 examples per set. Received: subset_size={m}")
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        k_aa, k_bb, k_ab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(
            a, b)
        same = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        estimates.append(same - 2.0 * k_ab.mean())
    return float(np.mean(estimates)), float(np.std(estimates))
