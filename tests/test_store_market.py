"""Market-data writers against the real schema: idempotent re-writes, latest-per-symbol reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from quantcore.collect.candles import pages, repair_gaps
from quantcore.model.market import Candle, Heatmap, HeatmapLevel, LiquidationEvent, Ticker
from quantcore.store.heatmaps import freshness, write_heatmaps
from quantcore.store.market import (
    last_candle_times,
    write_candles,
    write_liquidations,
    write_snapshots,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def candle(symbol: str, minute: int, close: float = 100.0, confirmed: bool = True) -> Candle:
    return Candle(
        symbol=symbol, start=T0 + timedelta(minutes=minute), open=100, high=max(101, close),
        low=min(99, close), close=close, volume=5, turnover=500, confirmed=confirmed,
    )  # fmt: skip


async def _count(pool: AsyncConnectionPool, sql: str, *params: object) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_snapshots_candles_liquidations_are_idempotent(pool: AsyncConnectionPool) -> None:
    tick = Ticker(symbol="IDEMUSDT", time=T0 + timedelta(seconds=17), last_price=1.5, open_interest_value=2e6,
                  funding_rate_pct=0.01)  # fmt: skip
    liq = LiquidationEvent(
        symbol="IDEMUSDT", time=T0, side="long", price=1.4, qty=1000, source="sim", event_key="k1"
    )
    for _ in range(2):
        async with pool.connection() as conn, conn.transaction():
            await write_snapshots(conn, [tick], "sim")
            await write_candles(conn, [candle("IDEMUSDT", 0), candle("IDEMUSDT", 1)], "sim")
            await write_liquidations(conn, [liq, liq])
    assert (
        await _count(
            pool, "SELECT count(*) FROM market_snapshots WHERE symbol='IDEMUSDT' AND time=%s", T0
        )
        == 1
    )
    assert await _count(pool, "SELECT count(*) FROM ohlcv WHERE symbol='IDEMUSDT'") == 2
    assert (
        await _count(pool, "SELECT count(*) FROM liquidation_events WHERE symbol='IDEMUSDT'") == 1
    )
    # a re-fetched candle replaces the earlier values
    async with pool.connection() as conn, conn.transaction():
        await write_candles(conn, [candle("IDEMUSDT", 1, close=120.0)], "sim")
    assert (
        await _count(pool, "SELECT count(*) FROM ohlcv WHERE symbol='IDEMUSDT' AND close = 120")
        == 1
    )
    async with pool.connection() as conn:
        last = await last_candle_times(conn, ["IDEMUSDT", "NONEUSDT"])
    assert last == {"IDEMUSDT": T0 + timedelta(minutes=1), "NONEUSDT": None}


async def test_heatmap_refresh_writes_levels_and_freshness(pool: AsyncConnectionPool) -> None:
    hm = Heatmap(
        symbol="HMUSDT", timeframe="24h", time=T0, source="sim", price=100.0,
        levels=(HeatmapLevel(price=90, value_usd=1e6), HeatmapLevel(price=110, value_usd=2e6),
                HeatmapLevel(price=110, value_usd=1e6)),
    )  # fmt: skip
    for _ in range(2):  # a retried refresh with the same time is stored once
        async with pool.connection() as conn, conn.transaction():
            await write_heatmaps(conn, [hm], T0, "schedule", "tests", 12)
    rows = await _count(pool, "SELECT count(*) FROM liquidation_levels WHERE symbol='HMUSDT'")
    shorts = await _count(
        pool, "SELECT value_usd FROM liquidation_levels WHERE symbol='HMUSDT' AND side='short'"
    )
    assert rows == 2 and shorts == 3_000_000  # same price and side summed; above price = shorts
    async with pool.connection() as conn:
        (f,) = await freshness(conn, ["HMUSDT"])
    assert (f.timeframe, f.refreshed_at, f.level_count) == ("24h", T0, 3)


class FakeKlines:
    """The venue at the process boundary: serves candles of a fixed history, counts requests."""

    def __init__(self, symbol: str, minutes: int) -> None:
        self.history = [candle(symbol, m) for m in range(minutes)]
        self.requests = 0

    async def klines(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1"
    ) -> list[Candle]:
        self.requests += 1
        return [c for c in self.history if start <= c.start <= end]


async def test_gap_repair_fills_only_what_is_missing_and_resumes(pool: AsyncConnectionPool) -> None:
    venue = FakeKlines("GAPUSDT", 2500)
    now = T0 + timedelta(minutes=2500)
    async with pool.connection() as conn, conn.transaction():  # already stored: minutes 0-99
        await write_candles(conn, venue.history[:100], "sim")
    written = await repair_gaps(venue, pool, ["GAPUSDT"], max_days=2, source="sim", now=now)
    assert (
        written["GAPUSDT"] == 2401
    )  # minute 99 re-fetched (could have been partial), 100..2499 new
    assert await _count(pool, "SELECT count(*) FROM ohlcv WHERE symbol='GAPUSDT'") == 2500
    before = venue.requests
    assert await repair_gaps(venue, pool, ["GAPUSDT"], max_days=2, source="sim", now=now) == {
        "GAPUSDT": 0
    }
    assert venue.requests == before  # nothing missing: the database answers, the venue is not asked
    assert len(pages(T0, now)) == 3


class FailingOnce(FakeKlines):
    """The venue fails the first request (a 503 during an outage), then answers."""

    def __init__(self, symbol: str, minutes: int) -> None:
        super().__init__(symbol, minutes)
        self.failed = False

    async def klines(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1"
    ) -> list[Candle]:
        if not self.failed:
            self.failed = True
            raise RuntimeError("Bybit HTTP 503")
        return await super().klines(symbol, start, end, interval)


async def test_a_hole_behind_newer_live_candles_is_still_repaired(
    pool: AsyncConnectionPool,
) -> None:
    """A repair fails during an outage, then the live stream stores newer candles: the next
    repair must still fill the hole behind them (the newest candle alone would hide it)."""
    venue = FailingOnce("HOLEUSDT", 300)
    verified: dict[str, datetime] = {}
    async with pool.connection() as conn, conn.transaction():
        await write_candles(conn, venue.history[:200], "sim")
    first = await repair_gaps(
        venue, pool, ["HOLEUSDT"], 1, "sim", now=T0 + timedelta(minutes=200), verified=verified
    )
    assert first == {"HOLEUSDT": 0} and "HOLEUSDT" in verified  # complete up to 200: no request
    # outage: minutes 200-219 never arrive, the repair at 220 fails, then the stream resumes
    failed = await repair_gaps(
        venue, pool, ["HOLEUSDT"], 1, "sim", now=T0 + timedelta(minutes=220), verified=verified
    )
    assert failed == {}
    async with pool.connection() as conn, conn.transaction():
        await write_candles(conn, venue.history[220:230], "sim")
    repaired = await repair_gaps(
        venue, pool, ["HOLEUSDT"], 1, "sim", now=T0 + timedelta(minutes=230), verified=verified
    )
    assert repaired["HOLEUSDT"] >= 20
    assert await _count(pool, "SELECT count(*) FROM ohlcv WHERE symbol='HOLEUSDT'") == 230
