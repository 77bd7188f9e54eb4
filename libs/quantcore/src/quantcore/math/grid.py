"""Rows → dense arrays: per-minute series as (coins, minutes), heatmaps as (coins, tf, levels)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - conventional short alias


def minute_grid(
    coin: ArrayLike, minute: ArrayLike, values: ArrayLike, n_coins: int, end_minute: int, width: int
) -> F:
    """Scatter (coin index, epoch minute, value) rows into (n_coins, width) ending at
    `end_minute` (last column); NaN where a minute has no row; rows outside are dropped."""
    c = np.asarray(coin, dtype=np.int64)
    col = np.asarray(minute, dtype=np.int64) - (end_minute - width + 1)
    v = np.asarray(values, dtype=np.float64)
    out = np.full((n_coins, width), np.nan)
    keep = (col >= 0) & (col < width) & (c >= 0) & (c < n_coins)
    out[c[keep], col[keep]] = v[keep]
    return out


def ffill(x: ArrayLike, limit: int) -> F:
    """Forward-fill NaNs along the last axis, at most `limit` steps after a known value."""
    a = np.asarray(x, dtype=np.float64)
    if a.shape[-1] == 0 or limit <= 0:
        return a.copy()
    idx = np.where(np.isfinite(a), np.arange(a.shape[-1]), -1)
    last = np.maximum.accumulate(idx, axis=-1)
    gap = np.arange(a.shape[-1]) - last
    filled = np.take_along_axis(a, np.maximum(last, 0), axis=-1)
    return np.asarray(np.where((last >= 0) & (gap <= limit), filled, np.nan))


def padded(
    coin: ArrayLike, tf: ArrayLike, price: ArrayLike, value: ArrayLike, n_coins: int, n_tf: int
) -> tuple[F, F]:
    """Levels (coin, timeframe, price, value), grouped by (coin, tf) and ordered by price within
    a group, into (n_coins, n_tf, L) arrays: NaN prices and 0 values pad the short rows."""
    c = np.asarray(coin, dtype=np.int64)
    t = np.asarray(tf, dtype=np.int64)
    p = np.asarray(price, dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    group = c * n_tf + t
    if group.size and (np.diff(group) < 0).any():
        order = np.lexsort((p, group))
        group, p, v = group[order], p[order], v[order]
    counts = np.bincount(group, minlength=n_coins * n_tf) if group.size else np.zeros(0, np.int64)
    width = int(counts.max()) if counts.size else 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if counts.size else counts
    pos = np.arange(group.size) - starts[group] if group.size else group
    prices = np.full((n_coins * n_tf, max(width, 1)), np.nan)
    values = np.zeros((n_coins * n_tf, max(width, 1)))
    prices[group, pos] = p
    values[group, pos] = v
    shape = (n_coins, n_tf, max(width, 1))
    return prices.reshape(shape), values.reshape(shape)
