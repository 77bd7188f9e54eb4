"""Wicks from OHLCV: how far price spikes beyond the candle body, in percent.

wick_up = (high − max(open, close)) / max(open, close) × 100
wick_down = (min(open, close) − low) / min(open, close) × 100
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class WickStats:
    max_up_pct: float
    max_down_pct: float
    p50_up_pct: float
    p95_up_pct: float
    p50_down_pct: float
    p95_down_pct: float
    candles: int


def wick_stats(open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> WickStats:
    o, h, lo, c = (np.asarray(x, dtype=np.float64) for x in (open_, high, low, close))
    ok = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & (lo > 0)
    o, h, lo, c = o[ok], h[ok], lo[ok], c[ok]
    if o.size == 0:
        return WickStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    up = np.clip((h - top) / top * 100.0, 0, None)
    down = np.clip((bottom - lo) / bottom * 100.0, 0, None)
    return WickStats(
        max_up_pct=float(up.max()),
        max_down_pct=float(down.max()),
        p50_up_pct=float(np.percentile(up, 50)),
        p95_up_pct=float(np.percentile(up, 95)),
        p50_down_pct=float(np.percentile(down, 50)),
        p95_down_pct=float(np.percentile(down, 95)),
        candles=int(o.size),
    )
