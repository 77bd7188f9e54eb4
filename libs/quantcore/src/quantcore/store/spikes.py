"""Writers of the spike scanner: fast_price_movers, oi_volume_spikes (idempotent on
(symbol, mode, time)) and the spike half of coin_thresholds (its own columns only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quantcore.db import copy_upsert
from quantcore.scan.spikes import MOVER_COLUMNS, SPIKE_COLUMNS, CoinPercentiles
from quantcore.scan.values import clean


async def write_movers(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn, "fast_price_movers", MOVER_COLUMNS, list(rows),
        conflict=("symbol", "mode", "time"), update=MOVER_COLUMNS[3:],
    )  # fmt: skip


async def write_spikes(conn: AsyncConnection[Any], rows: Sequence[tuple[Any, ...]]) -> int:
    return await copy_upsert(
        conn, "oi_volume_spikes", SPIKE_COLUMNS, list(rows),
        conflict=("symbol", "mode", "time"), update=SPIKE_COLUMNS[3:],
    )  # fmt: skip


async def upsert_spike_thresholds(
    conn: AsyncConnection[Any],
    coins: Sequence[CoinPercentiles],
    window_start: datetime,
    window_end: datetime,
    scanner: str,
    version: str,
) -> int:
    """Percentiles of each coin's own moves; typical_cluster_usd (cluster scanner) is kept.
    `stats` keeps one key per writer, so the two scanners never erase each other's."""
    if not coins:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            """
            INSERT INTO coin_thresholds (
                symbol, price_move_1m_p95_pct, price_move_1m_p99_pct, price_move_5m_p95_pct,
                price_move_5m_p99_pct, oi_change_15m_p95_pct, oi_change_15m_p99_pct,
                volume_ratio_5m_p95, volume_ratio_5m_p99, samples, window_start, window_end,
                stats, updated_at, scanner, scanner_version)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s)
            ON CONFLICT (symbol) DO UPDATE SET
                price_move_1m_p95_pct = EXCLUDED.price_move_1m_p95_pct,
                price_move_1m_p99_pct = EXCLUDED.price_move_1m_p99_pct,
                price_move_5m_p95_pct = EXCLUDED.price_move_5m_p95_pct,
                price_move_5m_p99_pct = EXCLUDED.price_move_5m_p99_pct,
                oi_change_15m_p95_pct = EXCLUDED.oi_change_15m_p95_pct,
                oi_change_15m_p99_pct = EXCLUDED.oi_change_15m_p99_pct,
                volume_ratio_5m_p95 = EXCLUDED.volume_ratio_5m_p95,
                volume_ratio_5m_p99 = EXCLUDED.volume_ratio_5m_p99,
                samples = EXCLUDED.samples, window_start = EXCLUDED.window_start,
                window_end = EXCLUDED.window_end,
                stats = coin_thresholds.stats || EXCLUDED.stats,
                updated_at = now(), scanner = EXCLUDED.scanner,
                scanner_version = EXCLUDED.scanner_version
            """,
            [
                (
                    c.symbol, c.values["price_move_1m_p95"], c.values["price_move_1m_p99"],
                    c.values["price_move_5m_p95"], c.values["price_move_5m_p99"],
                    c.values["oi_change_15m_p95"], c.values["oi_change_15m_p99"],
                    c.values["volume_ratio_5m_p95"], c.values["volume_ratio_5m_p99"],
                    c.samples, window_start, window_end,
                    Jsonb({"spikes": clean({**c.stats, "scanner_version": version})}),
                    scanner, version,
                )
                for c in coins
            ],
        )  # fmt: skip
    return len(coins)
