"""Open-interest history backfill: the collector records open interest only from its start
(each snapshot), but the spike scanner's 15-min OI change and the ranker's trigger need the
past, and the coin-specific thresholds want hours of it. So at start and at every gap repair
the missing past is filled from the venue's 5-min open-interest history: only the 5-min
buckets of the window that hold no snapshot with open interest are fetched, and rows are
inserted without touching existing snapshots — a re-run writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from psycopg_pool import AsyncConnectionPool

from quantcore.collect.candles import floor_minute
from quantcore.model.market import OpenInterestPoint
from quantcore.store.market import open_interest_buckets, write_open_interest_history

STEP_MIN = 5  # the venue's finest open-interest history interval


class OpenInterestSource(Protocol):
    async def open_interest(
        self, symbol: str, start: datetime, end: datetime, interval: str = "5min"
    ) -> list[OpenInterestPoint]: ...


def buckets(start: datetime, end: datetime) -> list[datetime]:
    """The STEP_MIN-minute bucket starts from the one holding `start` up to the last bucket
    that has ended by `end` (a bucket still running is not history yet)."""
    step = STEP_MIN * 60
    first = int(start.timestamp()) // step * step
    out: list[datetime] = []
    t = first
    while t + step <= end.timestamp():
        out.append(datetime.fromtimestamp(t, UTC))
        t += step
    return out


def bucket_of(t: datetime) -> datetime:
    step = STEP_MIN * 60
    return datetime.fromtimestamp(int(t.timestamp()) // step * step, UTC)


async def repair_open_interest(
    client: OpenInterestSource,
    pool: AsyncConnectionPool,
    symbols: Sequence[str],
    hours: float,
    source: str,
    now: datetime | None = None,
) -> dict[str, int]:
    """Fill the last `hours` of open interest where market_snapshots has none (per 5-min
    bucket). Returns rows written per symbol (coins already complete are not fetched)."""
    if hours <= 0 or not symbols:
        return {}
    now = floor_minute(now or datetime.now(UTC))
    wanted = buckets(now - timedelta(hours=hours), now)
    if not wanted:
        return {}
    async with pool.connection() as conn:
        have = await open_interest_buckets(conn, symbols, wanted[0], STEP_MIN)
    written: dict[str, int] = {}
    for symbol in symbols:
        missing = set(wanted) - have.get(symbol, set())
        if not missing:
            continue
        points = await client.open_interest(symbol, min(missing), now, f"{STEP_MIN}min")
        points = [p for p in points if bucket_of(p.time) in missing]
        async with pool.connection() as conn, conn.transaction():
            written[symbol] = await write_open_interest_history(conn, points, source)
    return written
