"""Ranker tables: its inputs from the scanners (typical cluster size, patterns), the top-N
`coin_rankings` of each cycle and the `signals` (idempotent on the deterministic signal id)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quantcore.db import copy_upsert
from quantcore.math import trigger as trigger_rules
from quantcore.model.market import HeatmapSource
from quantcore.model.plan import Direction, EntryMode

F = NDArray[np.float64]

RANKING_COLUMNS = (
    "time", "cycle_id", "rank", "symbol", "score", "imbalance", "imbalance_strength", "direction",
    "cluster_size_pct", "success_rate", "target_price", "price", "scanner", "scanner_version",
    "inputs", "heatmap_source",
)  # fmt: skip


async def typical_sizes(conn: AsyncConnection[Any], symbols: Sequence[str]) -> F:
    cur = await conn.execute(
        "SELECT symbol, typical_cluster_usd::float8 FROM coin_thresholds WHERE symbol = ANY(%s)",
        (list(symbols),),
    )
    found = {r[0]: r[1] for r in await cur.fetchall()}
    return np.array([found.get(s) or np.nan for s in symbols], dtype=np.float64)


async def pattern_arrays(
    conn: AsyncConnection[Any], symbols: Sequence[str], timeframes: Sequence[str]
) -> tuple[F, F, F]:
    """(success rate, max wick up %, max wick down %), each (coins, timeframes), NaN unknown."""
    coin_of = {s: i for i, s in enumerate(symbols)}
    tf_of = {t: i for i, t in enumerate(timeframes)}
    shape = (len(symbols), len(timeframes))
    success, up, down = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    cur = await conn.execute(
        """
        SELECT symbol, timeframe,
               -- historical samples and our own closed trades count alike (outcome learning)
               (COALESCE(success_rate::float8, 0) * samples + trade_wins)
                   / NULLIF(samples + trade_wins + trade_losses, 0),
               max_wick_up_pct::float8, max_wick_down_pct::float8
        FROM coin_liquidation_patterns WHERE symbol = ANY(%s)
        """,
        (list(symbols),),
    )
    for sym, tf, rate, wu, wd in await cur.fetchall():
        if tf not in tf_of:
            continue
        k = (coin_of[sym], tf_of[tf])
        success[k] = np.nan if rate is None else rate
        up[k] = np.nan if wu is None else wu
        down[k] = np.nan if wd is None else wd
    return success, up, down


async def write_rankings(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    """The cycle's top N. Keys (cycle_id, rank, time) and (cycle_id, symbol, time) make a
    second set for the same cycle impossible; a repeat is ignored (DO NOTHING)."""
    return await copy_upsert(
        conn, "coin_rankings", RANKING_COLUMNS, list(rows), conflict=("cycle_id", "rank", "time")
    )


async def cycle_ranked(conn: AsyncConnection[Any], cycle_id: str, at: datetime) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM coin_rankings WHERE cycle_id = %s AND time = %s LIMIT 1", (cycle_id, at)
    )
    return await cur.fetchone() is not None


async def in_cooldown(
    conn: AsyncConnection[Any],
    symbol: str,
    direction: str,
    at: datetime,
    cooldown: timedelta,
    signal_id: uuid.UUID,
    scanner: str,
) -> bool:
    """A signal of this scanner for this coin in this direction within the cooldown (other
    than this one): the last one at or before `at`, judged by the one cooldown rule
    (math.trigger.in_cooldown). Only the scanner's own signals count: a plug-in's signal on the
    coin (strategy_runner) must not silence the ranker, nor the other way round."""
    if cooldown.total_seconds() <= 0:
        return False
    cur = await conn.execute(
        """
        SELECT max(time) FROM signals
        WHERE symbol = %s AND direction = %s AND scanner = %s AND time <= %s
          AND signal_id <> %s
        """,
        (symbol, direction, scanner, at, signal_id),
    )
    row = await cur.fetchone()
    last = None if row is None or row[0] is None else row[0].timestamp()
    return trigger_rules.in_cooldown(last, at.timestamp(), cooldown.total_seconds())


async def spike_seen(
    conn: AsyncConnection[Any], symbol: str, since: datetime, until: datetime
) -> dict[str, Any] | None:
    """The latest spike-scanner row of a coin in the window: which scanner version saw it."""
    cur = await conn.execute(
        """
        SELECT tbl, time, mode, scanner, scanner_version FROM (
            (SELECT 'oi_volume_spikes' AS tbl, time, mode, scanner, scanner_version
             FROM oi_volume_spikes WHERE symbol = %(s)s AND time >= %(a)s AND time <= %(b)s
             ORDER BY time DESC LIMIT 1)
            UNION ALL
            (SELECT 'fast_price_movers', time, mode, scanner, scanner_version
             FROM fast_price_movers WHERE symbol = %(s)s AND time >= %(a)s AND time <= %(b)s
             ORDER BY time DESC LIMIT 1)
        ) x ORDER BY time DESC LIMIT 1
        """,
        {"s": symbol, "a": since, "b": until},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {
        "table": row[0], "time": row[1].isoformat(), "mode": row[2], "scanner": row[3],
        "scanner_version": row[4],
    }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SignalRow:
    """One row of `signals`, as every publisher writes it: the ranker's (a planned trade, every
    number filled) and a strategy plug-in's (its side and price; the ranker's numbers None).
    `inputs` holds everything needed to replay the decision, and the event under "event" (the
    outbox copy republish_pending sends). `heatmap_source` has no default: a publisher must
    say which heatmaps its signal stands on (None: none)."""

    time: datetime
    signal_id: uuid.UUID
    symbol: str
    direction: Direction
    scanner: str
    scanner_version: str
    agent: str
    heatmap_source: HeatmapSource | None
    inputs: dict[str, Any]
    price: float | None = None
    score: float | None = None
    rank: int | None = None
    cycle_id: str | None = None
    entry_mode: EntryMode | None = None
    entry_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    target_price: float | None = None
    imbalance: float | None = None
    cluster_size_pct: float | None = None
    success_rate: float | None = None
    oi_change_15m_pct: float | None = None
    volume_ratio_5m: float | None = None
    price_change_5m_pct: float | None = None
    vertical: Literal["perps", "poly"] = "perps"
    correlation_id: str | None = None
    status: str = "new"


SIGNAL_COLUMNS = tuple(f.name for f in fields(SignalRow))


async def insert_signal(conn: AsyncConnection[Any], row: SignalRow) -> bool:
    """Insert once; returns False when this signal id exists already (then publish nothing)."""
    values = [Jsonb(row.inputs) if c == "inputs" else getattr(row, c) for c in SIGNAL_COLUMNS]
    cur = await conn.execute(
        f"INSERT INTO signals ({', '.join(SIGNAL_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(SIGNAL_COLUMNS))}) "
        "ON CONFLICT (signal_id, time) DO NOTHING RETURNING signal_id",
        values,
    )
    return await cur.fetchone() is not None


async def mark_published(conn: AsyncConnection[Any], signal_id: Any, at: datetime) -> None:
    await conn.execute(
        "UPDATE signals SET published_at = now() WHERE signal_id = %s AND time = %s",
        (signal_id, at),
    )


async def unpublished_signals(
    conn: AsyncConnection[Any], since: datetime, before: datetime, scanners: Sequence[str]
) -> list[dict[str, Any]]:
    """Events of `scanners`' signals written but never stamped published (a crash between the
    two): each publisher republishes its own (the events differ by scanner)."""
    cur = await conn.execute(
        "SELECT inputs->'event' FROM signals WHERE published_at IS NULL AND time >= %s AND time < %s "
        "AND inputs ? 'event' AND scanner = ANY(%s) ORDER BY time",
        (since, before, list(scanners)),
    )
    return [row[0] for row in await cur.fetchall()]
