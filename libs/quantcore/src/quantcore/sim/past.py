"""The synthetic past before the 1-minute history: a year of 4-hour candles, funding, and the
positions opened in that year that neither got liquidated nor closed — so every heatmap
timeframe, up to 1y, has levels from the first request."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantcore.sim.levels import (
    LEVERAGE_TIERS,
    LONG,
    SHORT,
    TIER_LIFETIME_S,
    age_class,
    bucket_of,
    bucket_price,
    liquidation_price,
)
from quantcore.sim.price import REGIME_MEAN_S, REGIME_VOL, REGIME_VOLUME
from quantcore.sim.rings import CLOSE, FIELDS, HIGH, LOW, OI, OPEN, TURNOVER, VOLUME

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

COARSE_S = 4 * 3600
FUNDING_S = 8 * 3600
STEPS_PER_DAY = 86_400 // COARSE_S
REVERSION_PER_STEP = math.log(2.0) / 60.0 / STEPS_PER_DAY  # same 60-day half-life as live
SEED_CHUNK = 32  # coins per batch while seeding: bounds the temporary arrays


@dataclass(frozen=True)
class PastInputs:
    log_mean: F64  # per coin
    daily_vol: F64
    tick: F64
    turnover_per_s: F64
    oi_usd: F64
    funding_cap: F64
    start: int  # epoch seconds, on a 4-h boundary
    end: int


@dataclass(frozen=True)
class Past:
    start: int
    candles: F64  # [FIELDS, coins, steps], rounded to the tick
    funding: list[tuple[int, F64]]  # (settlement time, rate per coin)
    log_close: F64  # last close (log), where the 1-minute history starts
    oi_noise: F64

    @property
    def steps(self) -> int:
        return int(self.candles.shape[2])


def _round(prices: F64, tick: F64) -> F64:
    rounded: F64 = np.maximum(np.round(prices / tick[:, None]), 1.0) * tick[:, None]
    return rounded


def generate_past(rng: np.random.Generator, inp: PastInputs) -> Past:
    n = inp.log_mean.size
    steps = (inp.end - inp.start) // COARSE_S
    sig = inp.daily_vol / math.sqrt(STEPS_PER_DAY)
    logp = inp.log_mean.copy()
    regime = np.zeros(n, np.int64)
    log_open = np.empty((n, steps))
    log_close = np.empty((n, steps))
    regimes = np.empty((n, steps), np.int64)
    for k in range(steps):
        switch = rng.random(n) < -np.expm1(-COARSE_S / REGIME_MEAN_S[regime])
        regime = np.where(switch, (regime + rng.integers(1, 3, n)) % 3, regime)
        log_open[:, k] = logp
        z = rng.standard_t(4.0, n) / math.sqrt(2.0)
        logp = logp - REVERSION_PER_STEP * (logp - inp.log_mean) + sig * REGIME_VOL[regime] * z
        log_close[:, k] = logp
        regimes[:, k] = regime
    spread = sig[:, None] * REGIME_VOL[regimes] * 0.7  # how far a 4-h candle wicks past o/c
    log_high = np.maximum(log_open, log_close) + np.abs(rng.standard_normal((n, steps))) * spread
    log_low = np.minimum(log_open, log_close) - np.abs(rng.standard_normal((n, steps))) * spread
    candles = np.empty((FIELDS, n, steps))
    for field, log in ((OPEN, log_open), (HIGH, log_high), (LOW, log_low), (CLOSE, log_close)):
        candles[field] = _round(np.exp(log), inp.tick)
    candles[HIGH] = np.maximum(candles[HIGH], np.maximum(candles[OPEN], candles[CLOSE]))
    candles[LOW] = np.minimum(candles[LOW], np.minimum(candles[OPEN], candles[CLOSE]))
    noise = np.exp(rng.normal(-0.045, 0.3, (n, steps)))
    candles[TURNOVER] = inp.turnover_per_s[:, None] * COARSE_S * REGIME_VOLUME[regimes] * noise
    candles[VOLUME] = candles[TURNOVER] / ((candles[OPEN] + candles[CLOSE]) / 2)
    u = np.zeros(n)
    for k in range(steps):  # open interest: slow noise around its typical level
        u += -u / STEPS_PER_DAY + 0.05 * math.sqrt(2 / STEPS_PER_DAY) * rng.standard_normal(n)
        candles[OI, :, k] = inp.oi_usd * (0.6 * np.exp(u) + 0.4) / candles[CLOSE, :, k]
    day_return = np.concatenate(
        (
            np.zeros((n, STEPS_PER_DAY)),
            log_close[:, STEPS_PER_DAY:] - log_close[:, :-STEPS_PER_DAY],
        ),
        axis=1,
    )
    funding = []
    for t in range(-(-inp.start // FUNDING_S) * FUNDING_S, inp.end, FUNDING_S):
        k = max((t - inp.start) // COARSE_S - 1, 0)
        rate = 0.0001 + 0.01 * day_return[:, k] + 0.00015 * rng.standard_normal(n)
        funding.append((t, np.clip(rate, -inp.funding_cap, inp.funding_cap)))
    return Past(inp.start, candles, funding, log_close[:, -1].copy(), u)


SeededLevels = tuple[F64, F64, F64, F64, F64]  # price, value, opened, hazard, side


def surviving_levels(
    rng: np.random.Generator,
    past: Past,
    *,
    inflow_per_s: F64,
    tier_weights: F64,
    until: int,
    now: int,
) -> Iterator[tuple[slice, list[SeededLevels]]]:
    """Per batch of coins, the levels of the past's positions still open at `until`, merged
    by (side, bucket, age class relative to `now`), largest first."""
    n, steps = past.candles.shape[1], past.steps
    tiers = LEVERAGE_TIERS.size
    opened = past.start + np.arange(steps) * COARSE_S + COARSE_S // 2
    # Lowest low / highest high after each candle: a level survives if price never got there.
    low, high = past.candles[LOW], past.candles[HIGH]
    after_low = np.concatenate(
        (np.minimum.accumulate(low[:, ::-1], axis=1)[:, ::-1][:, 1:], np.full((n, 1), np.inf)),
        axis=1,
    )
    after_high = np.concatenate(
        (np.maximum.accumulate(high[:, ::-1], axis=1)[:, ::-1][:, 1:], np.full((n, 1), -np.inf)),
        axis=1,
    )
    survival = np.exp(-(until - opened)[:, None] / TIER_LIFETIME_S[None, :])  # [steps, tiers]
    classes = age_class((now - opened).astype(np.float64))
    hazard = 1.0 / TIER_LIFETIME_S
    for c0 in range(0, n, SEED_CHUNK):
        coins = slice(c0, min(n, c0 + SEED_CHUNK))
        m = coins.stop - coins.start
        base = inflow_per_s[coins, None, None] * COARSE_S * tier_weights[coins, None, :]
        entry = past.candles[CLOSE, coins][:, :, None]
        rows: list[tuple[I64, F64, F64, I64, I64, int]] = []
        for side in (LONG, SHORT):
            notional = 0.5 * base * np.exp(rng.normal(-0.08, 0.4, (m, steps, tiers)))
            notional *= survival[None, :, :]
            liq = liquidation_price(entry, LEVERAGE_TIERS[None, None, :], side)
            if side == LONG:
                alive = liq < after_low[coins][:, :, None]
            else:
                alive = liq > after_high[coins][:, :, None]
            alive &= notional >= 1.0
            ci, si, ti = np.nonzero(alive)
            rows.append((ci, liq[ci, si, ti], notional[ci, si, ti], si, ti, side))
        yield coins, _merge(rows, m, opened, classes, hazard)


def _merge(
    rows: list[tuple[I64, F64, F64, I64, I64, int]],
    coins: int,
    opened: I64,
    classes: I64,
    hazard: F64,
) -> list[SeededLevels]:
    coin = np.concatenate([r[0] for r in rows])
    if coin.size == 0:
        empty = np.empty(0)
        return [(empty, empty, empty, empty, empty)] * coins
    bucket = bucket_of(np.concatenate([r[1] for r in rows]))
    value = np.concatenate([r[2] for r in rows])
    step = np.concatenate([r[3] for r in rows])
    tier = np.concatenate([r[4] for r in rows])
    side = np.concatenate([np.full(r[0].size, r[5], np.int64) for r in rows])
    offset = bucket.min()
    key = ((coin * (bucket.max() - offset + 1) + (bucket - offset)) * 2 + (side > 0)) * 16
    key += classes[step]
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=value).astype(np.float64)
    w_open = np.bincount(inv, weights=value * opened[step]) / total
    w_hazard = np.bincount(inv, weights=value * hazard[tier]) / total
    first = np.zeros(uniq.size, np.int64)
    first[inv[::-1]] = np.arange(inv.size)[::-1]
    g_coin, g_bucket, g_side = coin[first], bucket[first], side[first]
    order = np.lexsort((-total, g_coin))
    bounds = np.searchsorted(g_coin[order], np.arange(coins + 1))
    out: list[SeededLevels] = []
    for c in range(coins):
        sel = order[bounds[c] : bounds[c + 1]]
        out.append(
            (
                bucket_price(g_bucket[sel]),
                total[sel],
                w_open[sel],
                w_hazard[sel],
                g_side[sel].astype(np.float64),
            )
        )
    return out
