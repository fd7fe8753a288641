"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019)."""

import numpy as np


def _squared_distances(a, b):
    """[N, M] squared Euclidean distances (float64, clipped at 0)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _radii(features, k, chunk):
    """Squared distance of each point to its k-th nearest neighbour in the same set."""
    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        d = _squared_distances(features[start:start + chunk], features)
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is itself
    return radii


def _coverage(queries, support, support_radii, chunk):
    """Fraction of `queries` inside at least one k-NN ball of `support`."""
    inside = 0
    for start in range(0, len(queries), chunk):
        d = _squared_distances(queries[start:start + chunk], support)
        inside += int(np.any(d <= support_radii[None, :], axis=1).sum())
    return inside / len(queries)


def precision_recall(real_features, fake_features, k=3, chunk=1000) -> tuple[float, float]:
    """Precision: generated samples inside the real manifold; recall: real samples inside
    the generated manifold. Each manifold is the union of balls reaching each point's k-th
    nearest neighbour.

    Args:
        real_features: [N, D].
        fake_features: [M, D].
        k: the neighbour (3 in the paper).
        chunk: rows per distance block (memory).

    Returns:
        (precision, recall), each in [0, 1].
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"Expected more than k={k} examples per set. Received: "
                         f"{len(real)} real, {len(fake)} generated")
    precision = _coverage(fake, real, _radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _radii(fake, k, chunk), chunk)
    return precision, recall
