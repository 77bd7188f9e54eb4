"""Liquidation imbalance: shorts above price vs longs below.

ratio = shorts_above / (shorts_above + longs_below). Above 0.5 the shorts dominate, price is
likely hunted up (LONG bias); below 0.5 a SHORT bias. strength = |ratio − 0.5| × 2.

Inputs are padded arrays: prices/values of shape (..., levels) with NaN prices (or 0 values)
as padding, and the current price broadcastable to (...,).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Direction = Literal["long", "short", "neutral"]
F = NDArray[np.float64]


def side_totals(prices: ArrayLike, values: ArrayLike, price: ArrayLike) -> tuple[F, F]:
    """(shorts_above, longs_below) summed over the last axis. A level exactly at price counts
    for neither side (it is being liquidated now)."""
    p = np.asarray(prices, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    cur = np.asarray(price, dtype=np.float64)[..., None]
    with np.errstate(invalid="ignore"):
        usable = v > 0  # NaN and padding zeros drop out here
        shorts = np.where(usable & (p > cur), v, 0.0).sum(axis=-1)
        longs = np.where(usable & (p < cur), v, 0.0).sum(axis=-1)
    return shorts, longs


def ratio(shorts_above: ArrayLike, longs_below: ArrayLike) -> F:
    """Imbalance ratio in [0, 1]; 0.5 (no bias) when there is nothing on either side."""
    s = np.asarray(shorts_above, dtype=np.float64)
    lo = np.asarray(longs_below, dtype=np.float64)
    total = s + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, s / np.where(total > 0, total, 1.0), 0.5)
    return np.asarray(out, dtype=np.float64)


def weighted_ratio(shorts_above: ArrayLike, longs_below: ArrayLike, weights: ArrayLike) -> F:
    """Aggregate over the last axis (timeframes) with per-timeframe weights, then take the ratio."""
    w = np.asarray(weights, dtype=np.float64)
    return ratio(
        (np.asarray(shorts_above) * w).sum(axis=-1), (np.asarray(longs_below) * w).sum(axis=-1)
    )


def strength(r: ArrayLike) -> F:
    return np.asarray(np.abs(np.asarray(r, dtype=np.float64) - 0.5) * 2.0)


def direction(r: float, neutral_band: float = 0.0) -> Direction:
    """long above 0.5 + band, short below 0.5 − band, else neutral."""
    if r > 0.5 + neutral_band:
        return "long"
    if r < 0.5 - neutral_band:
        return "short"
    return "neutral"
