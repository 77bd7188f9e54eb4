"""The latest heatmap of each coin × timeframe, as padded arrays for quantcore.math.

`liquidation_refreshes` (one row per coin × timeframe × source) says which snapshot is the
latest, and normally holds that snapshot's levels packed (written with them by
quantcore.store.heatmaps.pack_refreshes): one small row per coin × timeframe. Snapshots not
packed there are read from liquidation_levels by exact key (symbol, timeframe, time, source),
one index range per coin × timeframe, in price order so clusters.merge needs no sort. Both
paths give the same numbers in the same order. No DISTINCT ON over liquidation_levels (the
biggest table), no scan of it.
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

from quantcore.math.grid import padded
from quantcore.model.market import TIMEFRAMES, HeatmapSource, heatmap_source
from quantcore.store.arrays import fetch_packed, packed, unpack

F = NDArray[np.float64]


@dataclass(frozen=True)
class Snapshot:
    symbol: str
    timeframe: str
    source: str
    time: datetime

    @property
    def heatmap_source(self) -> HeatmapSource | None:
        return heatmap_source(self.source)


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


Columns = dict[str, NDArray[Any]]
_LEVEL_ARRAYS: list[tuple[str, Any]] = [("price", "float8"), ("value", "float8")]


def _key_arrays(snaps: Sequence[Snapshot], coin_of: dict[str, int], tf_of: dict[str, int]) -> tuple[Any, ...]:  # fmt: skip
    return (
        [coin_of[s.symbol] for s in snaps], [tf_of[s.timeframe] for s in snaps],
        [s.symbol for s in snaps], [s.timeframe for s in snaps],
        [s.source for s in snaps], [s.time for s in snaps],
    )  # fmt: skip


async def _fetch_refresh_packs(
    conn: AsyncConnection[Any],
    snaps: Sequence[Snapshot],
    coin_of: dict[str, int],
    tf_of: dict[str, int],
) -> tuple[Columns, set[tuple[int, int]]]:
    """The snapshots packed in their liquidation_refreshes rows (still the latest refresh):
    their columns and which (coin, tf) they cover; the others need _fetch. The refresh rows
    of the coins are read by symbol and matched here (passing every snapshot's key as query
    parameters costs more than the read)."""
    wanted = {(s.symbol, s.timeframe, s.source, s.time): (coin_of[s.symbol], tf_of[s.timeframe]) for s in snaps}  # fmt: skip
    async with conn.cursor(binary=True) as cur:
        await cur.execute(
            """
            SELECT symbol, timeframe, source, refreshed_at, level_prices, level_values
            FROM liquidation_refreshes
            WHERE symbol = ANY(%s) AND level_prices IS NOT NULL AND level_values IS NOT NULL
            """,
            (sorted({s.symbol for s in snaps}),),
        )
        found = await cur.fetchall()
    rows = sorted(
        (*wanted[key], r[4], r[5]) for r in found if (key := (r[0], r[1], r[2], r[3])) in wanted
    )
    return unpack(rows, ("coin", "tf"), _LEVEL_ARRAYS), {(r[0], r[1]) for r in rows}


def _combine(parts: Sequence[Columns], n_tf: int) -> Columns:
    """Columns of several reads as one, grouped by (coin, tf); the order of the levels within
    a group is kept (a stable sort on the group only)."""
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    group = cols["coin"] * n_tf + cols["tf"]
    if group.size and bool((np.diff(group) < 0).any()):
        order = np.argsort(group, kind="stable")
        cols = {name: col[order] for name, col in cols.items()}
    return cols


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
        _key_arrays(snaps, coin_of, tf_of),
        keys=("coin", "tf"),
        columns=_LEVEL_ARRAYS,
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
    packs, covered = await _fetch_refresh_packs(conn, snaps, coin_of, tf_of)
    rest = [s for s in snaps if (coin_of[s.symbol], tf_of[s.timeframe]) not in covered]
    parts = [packs, await _fetch(conn, rest, coin_of, tf_of)] if rest else [packs]
    cols = _combine(parts, len(timeframes))
    return _assemble(cols, symbols, timeframes, snaps, coin_of, tf_of)


async def read_levels_parallel(
    pool: AsyncConnectionPool,
    symbols: Sequence[str],
    snapshots: Sequence[Snapshot],
    slices: int,
    timeframes: Sequence[str] = TIMEFRAMES,
) -> LatestLevels:
    """As read_levels; the snapshots not packed in liquidation_refreshes are read from
    liquidation_levels in `slices` concurrent queries on separate pooled connections: that read
    is server-CPU bound (an index probe and a numeric → float8 conversion per level), so it
    runs about `slices` times faster where the server has the cores."""
    coin_of, tf_of, snaps_all = _order(symbols, snapshots, timeframes)
    async with pool.connection() as conn:
        packs, covered = await _fetch_refresh_packs(conn, snaps_all, coin_of, tf_of)
    snaps = [s for s in snaps_all if (coin_of[s.symbol], tf_of[s.timeframe]) not in covered]
    if not snaps:
        return _assemble(packs, symbols, timeframes, snaps_all, coin_of, tf_of)
    n = max(1, min(slices, len(snaps)))
    bounds = [len(snaps) * k // n for k in range(n + 1)]

    async def one(part: Sequence[Snapshot]) -> dict[str, NDArray[Any]]:
        async with pool.connection() as conn:
            return await _fetch(conn, part, coin_of, tf_of)

    parts = await asyncio.gather(*(one(snaps[bounds[k] : bounds[k + 1]]) for k in range(n)))
    cols = _combine([packs, *parts], len(timeframes))
    return _assemble(cols, symbols, timeframes, snaps_all, coin_of, tf_of)
