"""Market data tables: market_snapshots, ohlcv, liquidation_events.

Every write is idempotent on the table's natural key, so a retried or re-fetched batch never
makes a duplicate row: snapshots and candles are overwritten with the latest values (a
candle fetched again once it closed replaces its unconfirmed version), liquidation events
are kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from quantcore.db import copy_upsert, fetch_all
from quantcore.model.market import Candle, LiquidationEvent, OpenInterestPoint, Ticker

SNAPSHOT_COLUMNS = (
    "time", "symbol", "price", "mark_price", "index_price", "bid_price", "ask_price",
    "open_interest", "open_interest_value", "volume_24h", "turnover_24h", "high_24h", "low_24h",
    "price_change_24h_pct", "funding_rate_pct", "next_funding_at", "source",
)  # fmt: skip

CANDLE_COLUMNS = (
    "time",
    "symbol",
    "interval",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "turnover",
    "source",
)
LIQUIDATION_COLUMNS = ("time", "event_key", "symbol", "side", "price", "qty", "value_usd", "source")


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def snapshot_row(t: Ticker, source: str, at: datetime | None = None) -> tuple[Any, ...]:
    return (
        _minute(at or t.time), t.symbol, t.last_price, t.mark_price, t.index_price, t.bid_price,
        t.ask_price, t.open_interest, t.open_interest_value, t.volume_24h, t.turnover_24h,
        t.high_24h, t.low_24h, t.price_change_24h_pct, t.funding_rate_pct, t.next_funding_at, source,
    )  # fmt: skip


async def write_snapshots(
    conn: AsyncConnection[Any], tickers: Sequence[Ticker], source: str, at: datetime | None = None
) -> int:
    """One row per coin and minute (`at`, default each ticker's own time, floored to the minute)."""
    rows = [snapshot_row(t, source, at) for t in tickers]
    return await copy_upsert(
        conn, "market_snapshots", SNAPSHOT_COLUMNS, rows,
        conflict=("symbol", "time"), update=SNAPSHOT_COLUMNS[2:],
    )  # fmt: skip


async def write_candles(conn: AsyncConnection[Any], candles: Sequence[Candle], source: str) -> int:
    rows = [
        (
            c.start,
            c.symbol,
            c.interval,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.turnover,
            source,
        )
        for c in candles
    ]
    return await copy_upsert(
        conn, "ohlcv", CANDLE_COLUMNS, rows,
        conflict=("symbol", "interval", "time"), update=CANDLE_COLUMNS[3:],
    )  # fmt: skip


async def write_liquidations(conn: AsyncConnection[Any], events: Sequence[LiquidationEvent]) -> int:
    rows = [
        (e.time, e.event_key, e.symbol, e.side, e.price, e.qty, e.value_usd, e.source)
        for e in events
    ]
    return await copy_upsert(
        conn, "liquidation_events", LIQUIDATION_COLUMNS, rows, conflict=("event_key", "time")
    )


class LastCandle:
    symbol: str
    last: datetime | None

    def __init__(self, symbol: str, last: datetime | None) -> None:
        self.symbol = symbol
        self.last = last


async def last_candle_times(
    conn: AsyncConnection[Any], symbols: Sequence[str], interval: str = "1m"
) -> dict[str, datetime | None]:
    """Newest stored candle per symbol: one index probe per symbol (LATERAL), never a scan."""
    rows = await fetch_all(
        conn,
        """
        SELECT s.symbol, c.time AS last
        FROM unnest(%s::text[]) AS s(symbol)
        LEFT JOIN LATERAL (
            SELECT time FROM ohlcv o
            WHERE o.symbol = s.symbol AND o.interval = %s
            ORDER BY time DESC LIMIT 1
        ) c ON true
        """,
        (list(symbols), interval),
        LastCandle,
    )
    return {r.symbol: r.last for r in rows}


async def count_candles(
    conn: AsyncConnection[Any], symbol: str, start: datetime, end: datetime, interval: str = "1m"
) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM ohlcv WHERE symbol = %s AND interval = %s AND time >= %s AND time < %s",
        (symbol, interval, start, end),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


# --- open-interest history (backfill) ------------------------------------------------------------


async def open_interest_buckets(
    conn: AsyncConnection[Any], symbols: Sequence[str], since: datetime, step_min: int
) -> dict[str, set[datetime]]:
    """Per symbol, the starts of the `step_min`-minute buckets since `since` that hold a
    snapshot with open interest (one index range per symbol)."""
    cur = await conn.execute(
        """
        SELECT s.symbol, b.bucket
        FROM unnest(%(symbols)s::text[]) AS s(symbol)
        CROSS JOIN LATERAL (
            SELECT DISTINCT to_timestamp(floor(extract(epoch FROM time) / (60 * %(step)s))
                                         * 60 * %(step)s) AS bucket
            FROM market_snapshots m
            WHERE m.symbol = s.symbol AND m.time >= %(since)s
              AND coalesce(m.open_interest, m.open_interest_value) IS NOT NULL
        ) b
        """,
        {"symbols": list(symbols), "since": since, "step": step_min},
    )
    out: dict[str, set[datetime]] = {s: set() for s in symbols}
    for symbol, bucket in await cur.fetchall():
        out[symbol].add(bucket)
    return out


async def write_open_interest_history(
    conn: AsyncConnection[Any], points: Sequence[OpenInterestPoint], source: str
) -> int:
    """Past open interest as market_snapshots rows: one per point, priced at the close of the
    1-min candle that ended at the point's time (a point without that candle is skipped: price
    is required). Never overwrites a snapshot (DO NOTHING): a live row is richer."""
    if not points:
        return 0
    cur = await conn.execute(
        """
        INSERT INTO market_snapshots (time, symbol, price, open_interest, source)
        SELECT p.time, p.symbol, o.close, p.oi, %s
        FROM unnest(%s::text[], %s::timestamptz[], %s::float8[]) AS p(symbol, time, oi)
        JOIN ohlcv o ON o.symbol = p.symbol AND o.interval = '1m'
                    AND o.time = p.time - interval '1 minute'
        ON CONFLICT (symbol, time) DO NOTHING
        """,
        (
            source, [p.symbol for p in points], [p.time for p in points],
            [p.open_interest for p in points],
        ),
    )  # fmt: skip
    return cur.rowcount
