"""What scoring a stored heatmap against realised liquidations needs, from the database (works
on simulated and real data alike): the snapshot of a source at or before a moment, the
1-minute candles after it and the liquidations recorded after it. The scoring itself is
quantcore.math.heatmap_eval.realised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

F = NDArray[np.float64]


@dataclass(frozen=True)
class CoinAfter:
    """One coin: its snapshot's levels and price, and what happened in the hours after."""

    symbol: str
    at: datetime  # the snapshot's time
    price: float  # last close at or before the snapshot
    level_price: F
    level_value: F
    candle_start_s: F  # 1-minute candles after the snapshot
    candle_low: F
    candle_high: F
    liq_time_s: F
    liq_price: F
    liq_value: F


async def after_snapshots(
    conn: AsyncConnection[Any], source: str, timeframe: str, at: datetime, hours: float
) -> list[CoinAfter]:
    """Per coin with a `source` snapshot of `timeframe` at or before `at`: the latest such
    snapshot, and the candles and liquidations of the `hours` after it."""
    cur = await conn.execute(
        """
        SELECT DISTINCT ON (symbol) symbol, time FROM liquidation_levels
        WHERE source = %s AND timeframe = %s AND time <= %s
        ORDER BY symbol, time DESC
        """,
        (source, timeframe, at),
    )
    snaps = await cur.fetchall()
    out: list[CoinAfter] = []
    for symbol, t0 in snaps:
        cur = await conn.execute(
            """SELECT price::float8, value_usd::float8 FROM liquidation_levels
               WHERE symbol = %s AND timeframe = %s AND time = %s AND source = %s
                 AND value_usd > 0""",
            (symbol, timeframe, t0, source),
        )
        levels = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 2)
        cur = await conn.execute(
            """SELECT close::float8 FROM ohlcv WHERE symbol = %s AND interval = '1m'
                 AND time <= %s ORDER BY time DESC LIMIT 1""",
            (symbol, t0),
        )
        row = await cur.fetchone()
        if row is None or levels.size == 0:
            continue
        cur = await conn.execute(
            """SELECT extract(epoch from time)::float8, low::float8, high::float8 FROM ohlcv
               WHERE symbol = %s AND interval = '1m' AND time >= %s
                 AND time < %s + make_interval(secs => %s)
               ORDER BY time""",
            (symbol, t0, t0, hours * 3600),
        )
        candles = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 3)
        cur = await conn.execute(
            """SELECT extract(epoch from time)::float8, price::float8,
                      coalesce(value_usd, price * qty)::float8
               FROM liquidation_events
               WHERE symbol = %s AND time >= %s AND time < %s + make_interval(secs => %s)""",
            (symbol, t0, t0, hours * 3600),
        )
        liqs = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 3)
        out.append(
            CoinAfter(
                symbol=symbol, at=t0, price=float(row[0]), level_price=levels[:, 0],
                level_value=levels[:, 1], candle_start_s=candles[:, 0], candle_low=candles[:, 1],
                candle_high=candles[:, 2], liq_time_s=liqs[:, 0], liq_price=liqs[:, 1],
                liq_value=liqs[:, 2],
            )
        )  # fmt: skip
    return out


async def heatmap_level_sources(conn: AsyncConnection[Any]) -> list[str]:
    """The sources heatmaps are stored from (liquidation_refreshes is small and plain)."""
    cur = await conn.execute("SELECT DISTINCT source FROM liquidation_refreshes ORDER BY 1")
    return [r[0] for r in await cur.fetchall()]


HIT_RATE_COLUMNS = (
    "time", "heatmap_source", "timeframe", "predicted_at", "window_min", "tol_pct", "coins",
    "clusters", "reached", "hit", "liq_value_usd", "liq_inside_usd", "precision_pct",
    "recall_pct",
)  # fmt: skip


async def write_hit_rates(conn: AsyncConnection[Any], rows: list[tuple[Any, ...]]) -> int:
    """One row per source and evaluation (a repeated evaluation key is kept as first written)."""
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO heatmap_hit_rates ({', '.join(HIT_RATE_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(HIT_RATE_COLUMNS))}) ON CONFLICT DO NOTHING",
            rows,
        )
    return len(rows)
