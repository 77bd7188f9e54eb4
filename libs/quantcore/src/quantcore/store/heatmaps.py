"""Heatmap tables: liquidation_levels (one snapshot per refresh) and liquidation_refreshes
(freshness per coin × timeframe × source, queryable by scanners, the autotrader and Grafana).

Each refresh row also carries its levels packed (migration 0005): what the scanners read
every minute, computed once by the server from the stored levels when they are written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import copy_upsert, fetch_all
from quantcore.model.market import Heatmap

LEVEL_COLUMNS = ("time", "symbol", "timeframe", "source", "side", "price", "value_usd", "leverage")
REFRESH_COLUMNS = (
    "symbol", "timeframe", "source", "refreshed_at", "level_count", "duration_ms", "trigger", "agent"
)  # fmt: skip


def level_rows(hm: Heatmap, at: datetime) -> list[tuple[Any, ...]]:
    """Rows of one heatmap; levels at the same price and side are summed (the table's key)."""
    merged: dict[tuple[str, float], list[Any]] = {}
    for lv in hm.levels:
        key = (hm.side_of(lv), lv.price)
        if key in merged:
            merged[key][0] += lv.value_usd
        else:
            merged[key] = [lv.value_usd, lv.leverage]
    return [
        (at, hm.symbol, hm.timeframe, hm.source, side, price, value, lev)
        for (side, price), (value, lev) in merged.items()
    ]


async def write_heatmaps(
    conn: AsyncConnection[Any],
    heatmaps: Sequence[Heatmap],
    at: datetime,
    trigger: str,
    agent: str,
    duration_ms: int,
) -> int:
    """Write a refresh (all timeframes of one or more coins) and record its freshness."""
    rows = [row for hm in heatmaps for row in level_rows(hm, at)]
    written = await copy_upsert(
        conn, "liquidation_levels", LEVEL_COLUMNS, rows,
        conflict=("symbol", "timeframe", "time", "source", "side", "price"),
        update=("value_usd", "leverage"),
    )  # fmt: skip
    counts: dict[tuple[str, str, str], int] = {}
    for hm in heatmaps:
        counts[(hm.symbol, hm.timeframe, hm.source)] = len(hm.levels)
    refreshes = [
        (s, tf, src, at, n, duration_ms, trigger, agent) for (s, tf, src), n in counts.items()
    ]
    await copy_upsert(
        conn, "liquidation_refreshes", REFRESH_COLUMNS, refreshes,
        conflict=("symbol", "timeframe", "source"), update=REFRESH_COLUMNS[3:],
    )  # fmt: skip
    await pack_refreshes(conn, list(counts), at)
    return written


async def pack_refreshes(
    conn: AsyncConnection[Any], keys: Sequence[tuple[str, str, str]], at: datetime
) -> int:
    """Store the levels of the snapshots (symbol, timeframe, source) at `at` packed into their
    liquidation_refreshes rows: value_usd > 0, in the key's (side, price) order — exactly what
    quantcore.store.levels reads from liquidation_levels — as big-endian float8 arrays made by
    the server from the stored numerics. Only rows whose refreshed_at is `at` (a later refresh
    is never overwritten by an older one). Returns the rows packed."""
    if not keys:
        return 0
    # Each key's levels are one range of liquidation_levels' primary key. The snapshot time
    # comes per key from the unnest, not as a constant: with `time = <constant>` the planner
    # may pick the time index, and every key then scans the whole refresh (all coins share
    # its time in a batch): minutes instead of a second for 500 coins. The packs are made once
    # per key (materialized), then matched to the refresh rows by their primary key.
    cur = await conn.execute(
        """
        WITH packs AS MATERIALIZED (
            SELECT k.symbol, k.timeframe, k.source, l.prices, l.vals
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])
                 AS k(symbol, timeframe, source, at)
            CROSS JOIN LATERAL (
                SELECT string_agg(float8send(price::float8), ''::bytea ORDER BY side, price)
                           AS prices,
                       string_agg(float8send(value_usd::float8), ''::bytea ORDER BY side, price)
                           AS vals
                FROM liquidation_levels l
                WHERE l.symbol = k.symbol AND l.timeframe = k.timeframe AND l.time = k.at
                  AND l.source = k.source AND l.value_usd > 0
            ) l
        )
        UPDATE liquidation_refreshes r
        SET level_prices = coalesce(p.prices, ''::bytea), level_values = coalesce(p.vals, ''::bytea)
        FROM packs p
        WHERE r.symbol = p.symbol AND r.timeframe = p.timeframe AND r.source = p.source
          AND r.refreshed_at = %s
        """,
        (
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [at] * len(keys),
            at,
        ),
    )  # fmt: skip
    return cur.rowcount


@dataclass
class Freshness:
    symbol: str
    timeframe: str
    source: str
    refreshed_at: datetime
    level_count: int


async def freshness(
    conn: AsyncConnection[Any], symbols: Sequence[str] | None = None
) -> list[Freshness]:
    query = "SELECT symbol, timeframe, source, refreshed_at, level_count FROM liquidation_refreshes"
    if symbols is None:
        return await fetch_all(conn, query, None, Freshness)
    return await fetch_all(conn, query + " WHERE symbol = ANY(%s)", (list(symbols),), Freshness)
