"""Bar indicators over a whole series at once, causal by construction: the value at bar i is
computed from bars 0..i only (the backtester's no-lookahead rule; the live code reads the
last element of the same arrays)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
B = NDArray[np.bool_]


def sma(x: ArrayLike, n: int) -> F:
    """Simple moving average of the last `n` values at every bar; NaN for the first n − 1.
    Computed as a mean of each window (no running sum, so no drift over millions of bars)."""
    a = np.asarray(x, dtype=np.float64)
    if n < 1:
        raise ValueError("sma window must be at least 1")
    out = np.full(a.shape, np.nan)
    if a.shape[-1] >= n:
        windows = np.lib.stride_tricks.sliding_window_view(a, n, axis=-1)
        out[..., n - 1 :] = windows.sum(axis=-1) / n
    return out


def crossover(a: ArrayLike, b: ArrayLike) -> B:
    """True at bar i when `a` crossed above `b` on that bar: a[i−1] < b[i−1] and a[i] > b[i]
    (strict on both bars; the first bar is never a cross)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out[..., 1:] = (x[..., :-1] < y[..., :-1]) & (x[..., 1:] > y[..., 1:])
    return out
