"""The latest heatmap of each coin × timeframe, as padded arrays for quantcore.math.

`liquidation_refreshes` (one row per coin × timeframe × source) says which snapshot is the
latest; its levels are then read by exact key (symbol, timeframe, time, source), one index
range per coin × timeframe, sorted by price so clusters.merge needs no sort. No DISTINCT ON
over liquidation_levels (the biggest table), no scan of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from quantcore.model.market import TIMEFRAMES
from quantcore.scan.grid import padded
from quantcore.store.arrays import fetch_packed, packed

F = NDArray[np.float64]


@dataclass(frozen=True)
class Snapshot:
    symbol: str
    timeframe: str
    source: str
    time: datetime


@dataclass(frozen=True)
class LatestLevels:
    symbols: list[str]
    timeframes: list[str]
    prices: F  # (C, T, L), NaN padded
    values: F  # (C, T, L), 0 padded
    snapshots: dict[tuple[int, int], Snapshot]  # (coin, tf) → the snapshot read

    def levels_time(self, coin: int, tf: int) -> datetime | None:
        snap = self.snapshots.get((coin, tf))
        return snap.time if snap else None


async def heatmap_symbols(conn: AsyncConnection[Any], since: datetime) -> list[str]:
    """Coins with a heatmap refreshed since `since` (liquidation_refreshes is small and plain)."""
    cur = await conn.execute(
        "SELECT DISTINCT symbol FROM liquidation_refreshes WHERE refreshed_at >= %s ORDER BY symbol",
        (since,),
    )
    return [r[0] for r in await cur.fetchall()]


async def latest_snapshots(
    conn: AsyncConnection[Any],
    symbols: Sequence[str],
    timeframes: Sequence[str] = TIMEFRAMES,
    unclustered_only: bool = False,
) -> list[Snapshot]:
    """The newest snapshot per coin × timeframe (any source). With `unclustered_only`, only
    those the cluster scanner has not clustered yet (newer than its latest levels_time)."""
    skip = """
        AND NOT EXISTS (
            SELECT 1 FROM (
                SELECT levels_time FROM liquidation_clusters c
                WHERE c.symbol = f.symbol AND c.timeframe = f.timeframe
                ORDER BY c.time DESC LIMIT 1
            ) last WHERE last.levels_time >= f.refreshed_at
        )"""
    cur = await conn.execute(
        f"""
        SELECT f.symbol, f.timeframe, f.source, f.refreshed_at FROM (
            SELECT DISTINCT ON (symbol, timeframe) symbol, timeframe, source, refreshed_at
            FROM liquidation_refreshes
            WHERE symbol = ANY(%s) AND timeframe = ANY(%s) AND level_count > 0
            ORDER BY symbol, timeframe, refreshed_at DESC
        ) f
        WHERE true {skip if unclustered_only else ""}
        """,
        (list(symbols), list(timeframes)),
    )
    return [Snapshot(*r) for r in await cur.fetchall()]


def _order(
    symbols: Sequence[str], snapshots: Sequence[Snapshot], timeframes: Sequence[str]
) -> tuple[dict[str, int], dict[str, int], list[Snapshot]]:
    coin_of = {s: i for i, s in enumerate(symbols)}
    tf_of = {t: i for i, t in enumerate(timeframes)}
    snaps = sorted(
        (s for s in snapshots if s.symbol in coin_of and s.timeframe in tf_of),
        key=lambda s: (coin_of[s.symbol], tf_of[s.timeframe]),
    )
    return coin_of, tf_of, snaps


async def _fetch(
    conn: AsyncConnection[Any],
    snaps: Sequence[Snapshot],
    coin_of: dict[str, int],
    tf_of: dict[str, int],
) -> dict[str, NDArray[Any]]:
    """One packed row per snapshot. The levels come in the primary key's order (… side,
    price): longs sit below shorts, so that is price order, without a sort per snapshot
    (an ORDER BY here costs ~40 % more server time for 500 coins); clusters.merge checks the
    order and sorts only if a snapshot ever breaks it."""
    return await fetch_packed(
        conn,
        f"""
        SELECT f.coin, f.tf, l.prices, l.vals
        FROM unnest(%s::int4[], %s::int4[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
             AS f(coin, tf, symbol, timeframe, source, at)
        CROSS JOIN LATERAL (
            SELECT {packed("price", "float8", None)} AS prices,
                   {packed("value_usd", "float8", None)} AS vals
            FROM liquidation_levels l
            WHERE l.symbol = f.symbol AND l.timeframe = f.timeframe AND l.time = f.at
              AND l.source = f.source AND l.value_usd > 0
        ) l
        WHERE l.prices IS NOT NULL
        """,
        (
            [coin_of[s.symbol] for s in snaps], [tf_of[s.timeframe] for s in snaps],
            [s.symbol for s in snaps], [s.timeframe for s in snaps],
            [s.source for s in snaps], [s.time for s in snaps],
        ),
        keys=("coin", "tf"),
        columns=[("price", "float8"), ("value", "float8")],
    )  # fmt: skip


def _assemble(
    cols: dict[str, NDArray[Any]],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    snaps: Sequence[Snapshot],
    coin_of: dict[str, int],
    tf_of: dict[str, int],
) -> LatestLevels:
    prices, values = padded(
        cols["coin"], cols["tf"], cols["price"], cols["value"], len(symbols), len(timeframes)
    )
    return LatestLevels(
        symbols=list(symbols), timeframes=list(timeframes), prices=prices, values=values,
        snapshots={(coin_of[s.symbol], tf_of[s.timeframe]): s for s in snaps},
    )  # fmt: skip


async def read_levels(
    conn: AsyncConnection[Any],
    symbols: Sequence[str],
    snapshots: Sequence[Snapshot],
    timeframes: Sequence[str] = TIMEFRAMES,
) -> LatestLevels:
    """Levels of the given snapshots into (len(symbols), len(timeframes), L) arrays."""
    coin_of, tf_of, snaps = _order(symbols, snapshots, timeframes)
    cols = await _fetch(conn, snaps, coin_of, tf_of)
    return _assemble(cols, symbols, timeframes, snaps, coin_of, tf_of)


async def read_levels_parallel(
    pool: AsyncConnectionPool,
    symbols: Sequence[str],
    snapshots: Sequence[Snapshot],
    slices: int,
    timeframes: Sequence[str] = TIMEFRAMES,
) -> LatestLevels:
    """As read_levels, in `slices` concurrent queries on separate pooled connections: the read
    is server-CPU bound (an index probe and a numeric → float8 conversion per level), so the
    whole universe is read about `slices` times faster where the server has the cores."""
    coin_of, tf_of, snaps = _order(symbols, snapshots, timeframes)
    n = max(1, min(slices, len(snaps)))
    bounds = [len(snaps) * k // n for k in range(n + 1)]

    async def one(part: Sequence[Snapshot]) -> dict[str, NDArray[Any]]:
        async with pool.connection() as conn:
            return await _fetch(conn, part, coin_of, tf_of)

    parts = await asyncio.gather(*(one(snaps[bounds[k] : bounds[k + 1]]) for k in range(n)))
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return _assemble(cols, symbols, timeframes, snaps, coin_of, tf_of)
