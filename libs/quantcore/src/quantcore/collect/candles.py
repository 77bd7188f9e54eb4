"""Candle sync: fill [start, end) with 1-min candles, page by page, skipping pages already
complete in the database. The same code repairs gaps after downtime (service) and backfills a
year (CLI, with a progress bar). Resumable by construction: a re-run skips what is stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from psycopg_pool import AsyncConnectionPool

from quantcore.logging import get_logger
from quantcore.model.market import Candle
from quantcore.store.market import count_candles, last_candle_times, write_candles

log = get_logger(component="candles")
PAGE = timedelta(minutes=1000)  # Bybit kline limit per request


class KlineSource(Protocol):
    async def klines(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1"
    ) -> list[Candle]: ...


def floor_minute(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def pages(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    cursor = floor_minute(start)
    while cursor < end:
        out.append((cursor, min(cursor + PAGE, end)))
        cursor += PAGE
    return out


async def sync_symbol(
    client: KlineSource,
    pool: AsyncConnectionPool,
    symbol: str,
    start: datetime,
    end: datetime,
    source: str,
    on_page: Callable[[int], object] | None = None,
) -> int:
    """Fetch and store the missing 1-min candles of one symbol in [start, end). Returns rows written."""
    written = 0
    for page_start, page_end in pages(start, end):
        expected = int((page_end - page_start).total_seconds() // 60)
        async with pool.connection() as conn:
            have = await count_candles(conn, symbol, page_start, page_end)
        if have < expected:
            # the venue's candle end is inclusive; ask for the page's last minute start
            fetched = await client.klines(symbol, page_start, page_end - timedelta(minutes=1))
            # only closed candles: a still-open one would be stored with partial values
            candles = [c for c in fetched if c.confirmed]
            if candles:
                async with pool.connection() as conn, conn.transaction():
                    written += await write_candles(conn, candles, source)
        if on_page is not None:
            on_page(1)
    return written


VERIFY_MARGIN = timedelta(minutes=2)


async def repair_gaps(
    client: KlineSource,
    pool: AsyncConnectionPool,
    symbols: Sequence[str],
    max_days: float,
    source: str,
    now: datetime | None = None,
    verified: dict[str, datetime] | None = None,
) -> dict[str, int]:
    """After downtime: from each symbol's newest stored candle (or max_days ago) up to now.

    `verified` (kept by the caller between passes, updated here) holds, per symbol, the time up
    to which a repair has completed. A pass starts no later than that: when a coin's repair
    failed and the live stream then stored newer candles, the hole behind them is still
    repaired (the newest candle alone would hide it). Pages already complete cost one count."""
    now = floor_minute(now or datetime.now(UTC))
    floor = now - timedelta(days=max_days)
    async with pool.connection() as conn:
        last = await last_candle_times(conn, symbols)
    result: dict[str, int] = {}
    for symbol in symbols:
        newest = last.get(symbol)
        if verified is not None and symbol in verified and newest is not None:
            newest = min(newest, verified[symbol])
        start = max(floor, newest) if newest is not None else floor
        if start >= now:
            continue
        try:
            result[symbol] = await sync_symbol(client, pool, symbol, start, now, source)
        except Exception as exc:  # one coin failing must not stop the others
            log.warning("gap repair failed for a coin", symbol=symbol, error=str(exc)[:300])
            continue
        if verified is not None:
            # the venue may confirm the last minute's candle a moment late: keep a margin
            verified[symbol] = now - VERIFY_MARGIN
    return result
