"""A small, fully known market written through the real store functions, for the scanner and
ranker tests: 1-min candles, per-minute snapshots and heatmaps of every timeframe.

Coin k has base price 100 × (k + 1). Even coins lean LONG (more shorts above price), odd coins
SHORT; the lean grows with k, so the ranking order is known. `spiky` coins end with a known
spike: +3 % in the last minute (and 5 min), 5× volume in the last 5 minutes, +6 % open
interest over the last 15 minutes — over every fixed threshold and the SPEC trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg import AsyncConnection

from quantcore.model.market import TIMEFRAMES, Candle, Heatmap, HeatmapLevel, Ticker
from quantcore.store.heatmaps import write_heatmaps
from quantcore.store.market import write_candles, write_snapshots

JUMP = 1.03  # the spike: +3 % in the last minute
TARGET = (1.03, 1.032, 1.034)  # the big cluster on the bias side (merged within 0.5 %)


def minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def base(k: int) -> float:
    return 100.0 * (k + 1)


def closes(k: int, n: int, spiky: bool, seed: int = 7) -> np.ndarray[Any, Any]:
    """n closes ending exactly at base(k); calm noise, or flat then +3 % in the last minute."""
    rng = np.random.default_rng(seed + k)
    noise = 1 + rng.normal(0, 0.0004, n)
    if spiky:
        path = base(k) / JUMP * noise
        path[-1] = base(k)
    else:
        path = base(k) * noise
        path[-1] = base(k)
    return np.asarray(path)


def heatmap(symbol: str, k: int, tf: str, at: datetime, lean: float, long_bias: bool) -> Heatmap:
    """20 separate levels (1 % apart) on each side, plus the target cluster on the bias side."""
    b = base(k)
    unit = 1e6 * (1 + TIMEFRAMES.index(tf) / 4)
    strong, weak = unit * lean, unit
    levels: list[HeatmapLevel] = []
    for j in range(1, 11):
        up, down = b * (1 + j / 100), b * (1 - j / 100)
        levels.append(HeatmapLevel(price=round(up, 6), value_usd=strong if long_bias else weak))
        levels.append(HeatmapLevel(price=round(down, 6), value_usd=weak if long_bias else strong))
    for f in TARGET:
        p = b * f if long_bias else b * (2 - f)
        levels.append(HeatmapLevel(price=round(p, 6), value_usd=strong * 3))
    return Heatmap(
        symbol=symbol, timeframe=tf, time=at, source="sim", price=b, levels=tuple(levels)
    )  # type: ignore[arg-type]


async def seed_market(
    conn: AsyncConnection[Any],
    symbols: Sequence[str],
    at: datetime,
    minutes: int = 240,
    spiky: Sequence[str] = (),
    heatmaps: bool = True,
) -> None:
    """Candles and snapshots for the `minutes` minutes before `at`, heatmaps 1 minute before."""
    end = minute(at)
    for k, sym in enumerate(symbols):
        is_spiky = sym in spiky
        path = closes(k, minutes, is_spiky)
        starts = [end - timedelta(minutes=minutes - i) for i in range(minutes)]
        vol = np.full(minutes, 10.0)
        if is_spiky:
            vol[-5:] = 50.0
        oi = np.full(minutes, 1e6)
        if is_spiky:
            oi[-15:] = np.linspace(1e6, 1.06e6, 15)
        candles = [
            Candle(symbol=sym, start=t, open=float(c), high=float(c) * 1.001,
                   low=float(c) * 0.999, close=float(c), volume=float(v), turnover=float(v * c))
            for t, c, v in zip(starts, path, vol, strict=True)
        ]  # fmt: skip
        await write_candles(conn, candles, "sim")
        # a snapshot at minute m shows the close of the candle that just ended (m − 1)
        tickers = [
            Ticker(symbol=sym, time=t + timedelta(minutes=1), last_price=float(c),
                   open_interest=float(o), open_interest_value=float(o * c))
            for t, c, o in zip(starts, path, oi, strict=True)
        ]  # fmt: skip
        await write_snapshots(conn, tickers, "sim")
        if heatmaps:
            await write_heatmaps_for(conn, sym, k, end - timedelta(minutes=1))


async def write_heatmaps_for(conn: AsyncConnection[Any], symbol: str, k: int, at: datetime) -> None:
    lean = 2.0 + k / 4
    maps = [heatmap(symbol, k, tf, at, lean, long_bias=(k % 2 == 0)) for tf in TIMEFRAMES]
    await write_heatmaps(conn, maps, at, "schedule", "tests", 1)


def symbols(n: int, prefix: str = "S") -> list[str]:
    return [f"{prefix}{chr(65 + k // 26)}{chr(65 + k % 26)}USDT" for k in range(n)]


def utc_minute(ts: float) -> datetime:
    return minute(datetime.fromtimestamp(ts, UTC))
