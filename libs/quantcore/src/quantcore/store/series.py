"""Per-minute series of many coins at once (one query per table), as (coins, minutes) grids,
and the latest price per coin. Readers of `ohlcv` and `market_snapshots` for the scanners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

from quantcore.math.grid import ffill, minute_grid
from quantcore.store.arrays import fetch_packed, packed

F = NDArray[np.float64]
OI_FFILL_MIN = 5  # open interest is a level: a missed snapshot minute keeps the last value


@dataclass(frozen=True)
class MinuteSeries:
    """(coins, minutes) arrays, oldest first; column −1 is minute `end` (epoch minutes)."""

    symbols: list[str]
    end: int
    series: dict[str, F]

    @property
    def end_time(self) -> datetime:
        return datetime.fromtimestamp(self.end * 60, UTC)

    @property
    def start_time(self) -> datetime:
        width = next(iter(self.series.values())).shape[-1] if self.series else 0
        return datetime.fromtimestamp((self.end - width + 1) * 60, UTC)


def _minute(t: datetime) -> int:
    return int(t.timestamp() // 60)


async def candle_series(
    conn: AsyncConnection[Any], symbols: Sequence[str], at: datetime, minutes: int
) -> MinuteSeries:
    """Closes and quote volumes (turnover, else volume × close) of the 1-min candles of the
    `minutes` minutes before `at`, for every symbol in one query. The grid ends at the newest
    candle found (a coin missing that minute has NaN there)."""
    syms = list(symbols)
    cols = await fetch_packed(
        conn,
        f"""
        SELECT s.i - 1, o.minutes, o.closes, o.volumes
        FROM unnest(%s::text[]) WITH ORDINALITY AS s(symbol, i)
        CROSS JOIN LATERAL (
            SELECT {packed("extract(epoch FROM time)::int8 / 60", "int8", "time")} AS minutes,
                   {packed("close", "float8", "time")} AS closes,
                   {packed("coalesce(turnover, volume * close)", "float8", "time")} AS volumes
            FROM ohlcv
            WHERE ohlcv.symbol = s.symbol AND interval = '1m' AND time >= %s AND time < %s
        ) o
        WHERE o.minutes IS NOT NULL
        """,
        (syms, datetime.fromtimestamp((_minute(at) - minutes) * 60, UTC), at),
        keys=("coin",),
        columns=[("minute", "int8"), ("close", "float8"), ("volume", "float8")],
    )
    end = int(cols["minute"].max()) if cols["minute"].size else _minute(at) - 1
    grid = {
        name: minute_grid(cols["coin"], cols["minute"], cols[name], len(syms), end, minutes)
        for name in ("close", "volume")
    }
    return MinuteSeries(syms, end, grid)


async def open_interest_series(
    conn: AsyncConnection[Any], symbols: Sequence[str], at: datetime, minutes: int
) -> MinuteSeries:
    """Open interest (contracts; USD value where contracts are unknown) per minute from
    `market_snapshots`, forward-filled over short gaps, ending at the newest snapshot."""
    syms = list(symbols)
    cols = await fetch_packed(
        conn,
        f"""
        SELECT s.i - 1, m.minutes, m.oi
        FROM unnest(%s::text[]) WITH ORDINALITY AS s(symbol, i)
        CROSS JOIN LATERAL (
            SELECT {packed("extract(epoch FROM time)::int8 / 60", "int8", "time")} AS minutes,
                   {packed("coalesce(open_interest, open_interest_value)", "float8", "time")} AS oi
            FROM market_snapshots
            WHERE market_snapshots.symbol = s.symbol AND time >= %s AND time <= %s
        ) m
        WHERE m.minutes IS NOT NULL
        """,
        (syms, datetime.fromtimestamp((_minute(at) - minutes - OI_FFILL_MIN) * 60, UTC), at),
        keys=("coin",),
        columns=[("minute", "int8"), ("oi", "float8")],
    )
    end = int(cols["minute"].max()) if cols["minute"].size else _minute(at)
    # read a little before the window, so its first minutes can be filled from before it
    wide = minute_grid(
        cols["coin"], cols["minute"], cols["oi"], len(syms), end, minutes + OI_FFILL_MIN
    )
    return MinuteSeries(syms, end, {"oi": ffill(wide, OI_FFILL_MIN)[:, OI_FFILL_MIN:]})


@dataclass(frozen=True)
class LatestPrice:
    symbol: str
    price: float
    time: datetime


async def latest_prices(
    conn: AsyncConnection[Any], symbols: Sequence[str]
) -> dict[str, LatestPrice]:
    """Newest snapshot price per symbol: one index probe per symbol (LATERAL)."""
    cur = await conn.execute(
        """
        SELECT s.symbol, m.price::float8, m.time
        FROM unnest(%s::text[]) AS s(symbol)
        JOIN LATERAL (
            SELECT price, time FROM market_snapshots
            WHERE market_snapshots.symbol = s.symbol ORDER BY time DESC LIMIT 1
        ) m ON true
        """,
        (list(symbols),),
    )
    return {r[0]: LatestPrice(r[0], float(r[1]), r[2]) for r in await cur.fetchall()}


async def recent_symbols(conn: AsyncConnection[Any], since: datetime) -> list[str]:
    """Coins with a snapshot since `since` (the live universe, from the time index)."""
    cur = await conn.execute(
        "SELECT DISTINCT symbol FROM market_snapshots WHERE time >= %s ORDER BY symbol", (since,)
    )
    return [r[0] for r in await cur.fetchall()]


PRICE_MAX_AGE_S = 600.0  # an older snapshot price is not "the current price"


def price_array(
    prices: dict[str, LatestPrice], symbols: Sequence[str], at: datetime,
    max_age_s: float = PRICE_MAX_AGE_S,
) -> F:  # fmt: skip
    """Prices in `symbols` order; NaN where unknown or older than max_age_s before `at`."""
    out = np.full(len(symbols), np.nan)
    for i, sym in enumerate(symbols):
        p = prices.get(sym)
        if p is not None and (at - p.time).total_seconds() <= max_age_s and p.price > 0:
            out[i] = p.price
    return out
