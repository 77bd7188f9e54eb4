"""CoinGlass-style liquidation heatmaps from the simulated levels.

The grid: columns are candles over the timeframe (x), rows are price levels (y). A level that
exists now fills the cells of its row from the column in which it formed through the latest
column, with its current remaining value, so the latest column holds every current level of
the timeframe (that is what our adapter reads).

The three CoinGlass "models" are different estimates of the same thing; here: model2 is the
book as it is, model1 smooths it over neighbouring rows and shades it down 10 %, model3 uses
rows twice as coarse and shades it up 10 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantcore.sim.levels import LOG_STEP, bucket_of
from quantcore.sim.rings import FIELDS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# Column width per timeframe: 24 to 48 columns each.
COLUMN_S: dict[str, int] = {
    "12h": 1800,
    "24h": 3600,
    "3d": 7200,
    "7d": 14400,
    "14d": 28800,
    "30d": 43200,
    "90d": 172800,
    "180d": 345600,
    "1y": 691200,
}
MODELS = ("model1", "model2", "model3")
MAX_ROWS = 400
MIN_BAND = 0.10  # the y axis spans at least ±10 % around the price
MAX_BAND = 0.35  # levels further than this from the price are left out


@dataclass(frozen=True)
class HeatmapGrid:
    y_axis: F64  # price of each row
    x: I64  # cell column (index into the candles)
    y: I64  # cell row (index into y_axis)
    value: F64  # cell value, USD
    candle_starts: I64  # column start, epoch seconds
    candles: F64  # [FIELDS, columns] OHLCV of each column (turnover = volume in USD)


def column_range(timeframe: str, range_s: float, now: int) -> tuple[int, int, int]:
    """(width seconds, first column number, number of columns) covering [now − range, now]."""
    width = COLUMN_S[timeframe]
    first = math.floor((now - range_s) / width)
    last = now // width
    return width, first, last - first + 1


def build(
    *,
    price: float,
    level_price: F64,
    level_value: F64,
    level_opened: F64,
    candle_starts: I64,
    candles: F64,
    model: str,
) -> HeatmapGrid:
    """Lay the levels on the grid; `candle_starts` are the column starts (seconds)."""
    if model not in MODELS:
        raise ValueError(f"unknown heatmap model {model!r}")
    n_x = candle_starts.size
    width = int(candle_starts[1] - candle_starts[0]) if n_x > 1 else 1
    center = int(bucket_of(price))
    band_min = math.ceil(math.log1p(MIN_BAND) / LOG_STEP)
    band_max = math.ceil(math.log1p(MAX_BAND) / LOG_STEP)
    buckets = bucket_of(level_price) if level_price.size else np.empty(0, np.int64)
    near = np.abs(buckets - center) <= band_max
    buckets, values, opened = buckets[near], level_value[near], level_opened[near]
    lo = min(int(buckets.min()) if buckets.size else center, center - band_min)
    hi = max(int(buckets.max()) if buckets.size else center, center + band_min)
    group = max(1, math.ceil((hi - lo + 1) / MAX_ROWS))
    if model == "model3":
        group *= 2
    n_y = (hi - lo) // group + 1
    y_axis = np.exp((lo + np.arange(n_y) * group + group / 2.0) * LOG_STEP)
    grid = np.zeros((max(n_x, 1), n_y))
    if buckets.size and n_x:
        x0 = np.clip((opened - candle_starts[0]) // width, 0, n_x - 1).astype(np.int64)
        np.add.at(grid, (x0, (buckets - lo) // group), values)
        grid = np.cumsum(grid, axis=0)
    if model == "model1":
        grid = 0.9 * _smooth_rows(grid)
    elif model == "model3":
        grid = 1.1 * grid
    xs, ys = np.nonzero(grid[:n_x] >= 0.5)
    return HeatmapGrid(
        y_axis=y_axis,
        x=xs.astype(np.int64),
        y=ys.astype(np.int64),
        value=grid[xs, ys],
        candle_starts=candle_starts,
        candles=candles if candles.shape[0] == FIELDS else np.empty((FIELDS, 0)),
    )


def _smooth_rows(grid: F64) -> F64:
    out = 0.5 * grid
    out[:, 1:] += 0.25 * grid[:, :-1]
    out[:, :-1] += 0.25 * grid[:, 1:]
    return out
