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
from quantcore.model.market import Candle, LiquidationEvent, Ticker

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
