"""Writers of the spike scanner: fast_price_movers, oi_volume_spikes (idempotent on
(symbol, mode, time)) and the spike half of coin_thresholds (its own columns only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quantcore.db import copy_upsert
from quantcore.math.values import clean

MOVER_COLUMNS = (
    "time", "symbol", "mode", "direction", "price", "price_change_1m_pct", "price_change_5m_pct",
    "threshold_1m_pct", "threshold_5m_pct", "trigger_window", "zscore_1m", "zscore_5m",
    "percentile_1m", "percentile_5m", "refresh_requested", "scanner", "scanner_version", "inputs",
)  # fmt: skip


SPIKE_COLUMNS = (
    "time", "symbol", "mode", "oi_change_15m_pct", "volume_5m", "volume_1h_avg_5m",
    "volume_ratio", "price_change_5m_pct", "oi_threshold_pct", "volume_ratio_threshold",
    "oi_zscore", "volume_zscore", "oi_percentile", "volume_percentile", "is_oi_spike",
    "is_volume_spike", "refresh_requested", "scanner", "scanner_version", "inputs",
)  # fmt: skip


@dataclass(frozen=True)
class CoinPercentiles:
    """Per coin, from the scan window: p95/p99 of |1m|, |5m| moves, |15m OI change|, volume
    ratio; the robust centre/scale of each (z-scores); how many 1-min moves were behind them."""

    symbol: str
    values: dict[str, float | None]
    samples: int
    stats: dict[str, Any]


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
