"""Open-interest history backfill (quantcore.collect.open_interest): the real Bybit client
(pybit) against the fake venue's open-interest endpoint, real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.collect.open_interest import buckets, repair_open_interest
from quantcore.model.market import Candle, Ticker
from quantcore.retry import RetryPolicy
from quantcore.store.market import write_candles, write_snapshots
from tests.adapters.fake_venue import FakeVenue, Reply, ok

OI = "/v5/market/open-interest"
NOW = datetime(2026, 4, 1, 12, 2, tzinfo=UTC)  # 12:00–12:05 is still running at NOW


def oi_at(t: datetime) -> float:
    return 5_000.0 + (t - NOW).total_seconds() / 60  # contracts, known per minute


def venue_oi(query: dict[str, str]) -> Reply:
    """The venue's 5-min history of one symbol in [startTime, endTime], newest first."""
    start, end = int(query["startTime"]) // 1000, int(query["endTime"]) // 1000
    times = [t for t in range(start // 300 * 300, end + 1, 300) if t >= start]
    items = [
        {"openInterest": str(oi_at(datetime.fromtimestamp(t, UTC))), "timestamp": str(t * 1000)}
        for t in reversed(times)
    ]
    return ok(
        {"symbol": query["symbol"], "category": "linear", "list": items, "nextPageCursor": ""}
    )


@pytest.fixture
async def venue() -> AsyncIterator[FakeVenue]:
    fake = FakeVenue()
    await fake.start()
    fake.routes[OI] = venue_oi
    yield fake
    await fake.stop()


@pytest.fixture
async def client(venue: FakeVenue) -> AsyncIterator[BybitMarketData]:
    fast = RetryPolicy(attempts=2, base_s=0.01, max_s=0.05)
    c = BybitMarketData(venue.url, rate_per_s=1000, timeout_s=2, retry_policy=fast)
    yield c
    await c.aclose()


def close_at(k: int) -> float:
    return 100.0 + k


async def seed(pool: AsyncConnectionPool, symbol: str, candle_from: datetime) -> None:
    """1-min candles from `candle_from` to NOW; live snapshots (with OI) for the last 7 min."""
    minutes = int((NOW - candle_from).total_seconds() // 60)
    candles = [
        Candle(symbol=symbol, start=candle_from + timedelta(minutes=k), open=1.0, high=999.0,
               low=0.5, close=close_at(k), volume=1.0, turnover=1.0)
        for k in range(minutes)
    ]  # fmt: skip
    live = [
        Ticker(symbol=symbol, time=NOW - timedelta(minutes=m), last_price=7.0,
               open_interest=42.0, open_interest_value=4200.0)
        for m in range(7, 0, -1)
    ]  # fmt: skip
    async with pool.connection() as conn, conn.transaction():
        await write_candles(conn, candles, "sim")
        await write_snapshots(conn, live, "sim")


async def stored(pool: AsyncConnectionPool, symbol: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT time, price::float8, open_interest::float8 FROM market_snapshots "
            "WHERE symbol = %s ORDER BY time",
            (symbol,),
        )
        return await cur.fetchall()


def test_buckets_are_whole_past_five_minute_steps() -> None:
    got = buckets(NOW - timedelta(minutes=17), NOW)
    assert [b.strftime("%H:%M") for b in got] == ["11:45", "11:50", "11:55"]


async def test_backfill_fills_what_the_snapshots_lack_once(
    pool: AsyncConnectionPool, venue: FakeVenue, client: BybitMarketData
) -> None:
    sym = "OIAUSDT"
    candle_from = NOW - timedelta(hours=2)
    await seed(pool, sym, candle_from)
    written = await repair_open_interest(client, pool, [sym], 1.0, "sim", now=NOW)

    # the hour's whole buckets are 11:00 … 11:55; 11:55 holds live snapshots (11:55–12:01)
    expected = [NOW.replace(hour=11, minute=0) + timedelta(minutes=5 * k) for k in range(11)]
    assert written == {sym: len(expected)}
    calls = venue.calls(OI)
    assert len(calls) == 1 and int(calls[0]["startTime"]) // 1000 == int(expected[0].timestamp())
    rows = await stored(pool, sym)
    filled = [r for r in rows if r[0] < NOW - timedelta(minutes=7)]
    assert [r[0] for r in filled] == expected
    for t, price, oi in filled:  # priced at the close of the candle that ended at t
        k = int((t - candle_from).total_seconds() // 60) - 1
        assert (price, oi) == (close_at(k), oi_at(t))
    assert [r[1:] for r in rows if r[0] >= NOW - timedelta(minutes=7)] == [(7.0, 42.0)] * 7

    # complete now: nothing fetched, nothing written
    assert await repair_open_interest(client, pool, [sym], 1.0, "sim", now=NOW) == {}
    assert len(venue.calls(OI)) == 1
    assert await stored(pool, sym) == rows


async def test_points_without_their_candle_wait_for_the_next_repair(
    pool: AsyncConnectionPool, venue: FakeVenue, client: BybitMarketData
) -> None:
    sym = "OIBUSDT"
    await seed(pool, sym, NOW - timedelta(minutes=32))  # candles from 11:30 only
    first = await repair_open_interest(client, pool, [sym], 1.0, "sim", now=NOW)
    # 11:30 needs the 11:29 candle: points 11:35 … 11:50 are written, 11:00 … 11:30 are not
    assert first == {sym: 4}
    again = await repair_open_interest(client, pool, [sym], 1.0, "sim", now=NOW)
    assert again == {sym: 0}  # still missing, asked again, still no candle
    assert len(venue.calls(OI)) == 2
    off = await repair_open_interest(client, pool, [sym], 0.0, "sim", now=NOW)
    assert off == {} and len(venue.calls(OI)) == 2
