"""Score and rank coins.

score = imbalance × 50 + min(cluster_size_pct, 200) × 0.3 + success_rate × 20
(weights and the cap are settings). Ranking sorts by score, ties broken by symbol, so the
result never depends on the order coins were given in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class ScoreWeights:
    imbalance: float = 50.0
    cluster: float = 0.3
    success: float = 20.0
    cluster_cap_pct: float = 200.0


def cluster_size_pct(cluster_value: ArrayLike, typical_value: ArrayLike) -> NDArray[np.float64]:
    """Cluster value as percent of the coin's typical cluster (0 when the typical is unknown)."""
    c = np.asarray(cluster_value, dtype=np.float64)
    t = np.asarray(typical_value, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((t > 0) & np.isfinite(t), c / np.where(t > 0, t, 1.0) * 100.0, 0.0)
    return np.asarray(out, dtype=np.float64)


def score(
    imbalance: ArrayLike,
    size_pct: ArrayLike,
    success_rate: ArrayLike,
    w: ScoreWeights = ScoreWeights(),
) -> NDArray[np.float64]:
    """`imbalance` is the dominant share in the bias direction (0.5..1), success 0..1."""
    return np.asarray(
        np.asarray(imbalance, dtype=np.float64) * w.imbalance
        + np.minimum(np.asarray(size_pct, dtype=np.float64), w.cluster_cap_pct) * w.cluster
        + np.asarray(success_rate, dtype=np.float64) * w.success
    )


def rank(symbols: list[str], scores: ArrayLike) -> list[int]:
    """Indices of symbols from best to worst: score descending, then symbol ascending."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isfinite(s), s, -np.inf)
    return sorted(range(len(symbols)), key=lambda i: (-s[i], symbols[i]))
