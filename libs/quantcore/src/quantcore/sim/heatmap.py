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
CELL_MIN = 0.5  # cells below this many USD are not drawn


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


@dataclass(frozen=True)
class RowLayout:
    """The heatmap's price rows: which row each level falls in (levels outside the band: −1)."""

    y_axis: F64  # price of each row
    row: I64  # per level, its row (−1: beyond MAX_BAND, left out)


def layout(price: float, level_price: F64, model: str) -> RowLayout:
    """Rows around `price`: log-spaced buckets, grouped so there are at most MAX_ROWS (twice as
    coarse for model3); the axis spans at least ±MIN_BAND and stops at ±MAX_BAND."""
    if model not in MODELS:
        raise ValueError(f"unknown heatmap model {model!r}")
    center = int(bucket_of(price))
    band_min = math.ceil(math.log1p(MIN_BAND) / LOG_STEP)
    band_max = math.ceil(math.log1p(MAX_BAND) / LOG_STEP)
    buckets = bucket_of(level_price) if level_price.size else np.empty(0, np.int64)
    near = np.abs(buckets - center) <= band_max
    inside = buckets[near]
    lo = min(int(inside.min()) if inside.size else center, center - band_min)
    hi = max(int(inside.max()) if inside.size else center, center + band_min)
    group = max(1, math.ceil((hi - lo + 1) / MAX_ROWS))
    if model == "model3":
        group *= 2
    n_y = (hi - lo) // group + 1
    y_axis = np.exp((lo + np.arange(n_y) * group + group / 2.0) * LOG_STEP)
    return RowLayout(y_axis, np.where(near, (buckets - lo) // group, -1).astype(np.int64))


def shade(grid: F64, model: str) -> F64:
    """The model's estimate of the book laid on rows (the last axis): model1 smoothed over
    neighbouring rows and shaded down 10 %, model3 shaded up 10 %, model2 as it is."""
    if model == "model1":
        return 0.9 * _smooth_rows(grid)
    if model == "model3":
        return 1.1 * grid
    return grid


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
    rows = layout(price, level_price, model)
    n_x = candle_starts.size
    width = int(candle_starts[1] - candle_starts[0]) if n_x > 1 else 1
    near = rows.row >= 0
    grid = np.zeros((max(n_x, 1), rows.y_axis.size))
    if near.any() and n_x:
        x0 = np.clip((level_opened[near] - candle_starts[0]) // width, 0, n_x - 1).astype(np.int64)
        np.add.at(grid, (x0, rows.row[near]), level_value[near])
        grid = np.cumsum(grid, axis=0)
    grid = shade(grid, model)
    xs, ys = np.nonzero(grid[:n_x] >= CELL_MIN)
    return HeatmapGrid(
        y_axis=rows.y_axis,
        x=xs.astype(np.int64),
        y=ys.astype(np.int64),
        value=grid[xs, ys],
        candle_starts=candle_starts,
        candles=candles if candles.shape[0] == FIELDS else np.empty((FIELDS, 0)),
    )


def latest_levels(
    *, price: float, level_price: F64, level_value: F64, model: str, price_decimals: int
) -> tuple[F64, F64]:
    """The levels a collector reads off the heatmap: the cells of the latest column (every
    level that exists now), (prices, values) sorted by price, the prices on the venue's
    decimals and the values in cents as the simulator's CoinGlass endpoint prints them. The
    same rows, shading and cut as `build` without the columns before the latest (the
    backtest's sim tape reads these at every refresh)."""
    rows = layout(price, level_price, model)
    near = rows.row >= 0
    column: F64 = np.bincount(
        rows.row[near], weights=level_value[near], minlength=rows.y_axis.size
    ).astype(np.float64)
    column = shade(column[None, :], model)[0]
    keep = np.flatnonzero(column >= CELL_MIN)
    prices = np.round(rows.y_axis[keep], price_decimals)
    values = np.round(column[keep], 2)
    order = np.argsort(prices, kind="stable")
    return prices[order], values[order]


def _smooth_rows(grid: F64) -> F64:
    out = 0.5 * grid
    out[:, 1:] += 0.25 * grid[:, :-1]
    out[:, :-1] += 0.25 * grid[:, 1:]
    return out
