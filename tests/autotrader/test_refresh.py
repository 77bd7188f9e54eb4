"""The pre-trade refresh re-makes the decision on fresh data (SPEC §4, issue 11 item 5).

The autotrader runs in-process against real PostgreSQL and Redis, the paper venue, and a
local fake Bybit REST server (instruments and tickers, real wire format). The test plays the
liquidation collector at the bus boundary: it answers the autotrader's refresh request by
writing the coin's new heatmaps through the store and publishing `heatmap.refreshed`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Bus, Delivery
from quantcore.model.events import (
    STREAM_HEATMAPS_REFRESHED,
    STREAM_REFRESH_REQUESTS,
    HeatmapRefreshRequested,
    HeatmapsRefreshed,
    TradeSignalled,
)
from quantcore.model.market import TIMEFRAMES, Heatmap, HeatmapLevel, Ticker
from quantcore.model.plan import MarketView, PriceRange
from quantcore.service import ServiceContext
from quantcore.store.heatmaps import write_heatmaps
from quantcore.store.market import write_snapshots
from quantcore.testing import Sandbox
from svc_autotrader.service import Autotrader
from tests.fakes.bybit import PRICE, SYMBOL, FakeBybit


def heatmaps(
    at: datetime, above: list[tuple[float, float]], below: list[tuple[float, float]]
) -> list[Heatmap]:
    """Every timeframe: levels (price, value USD) above and below PRICE."""
    levels = tuple(HeatmapLevel(price=p, value_usd=v) for p, v in above + below)
    return [Heatmap(symbol=SYMBOL, timeframe=tf, time=at, source="sim", price=PRICE, levels=levels)
            for tf in TIMEFRAMES]  # fmt: skip


SMALL_BELOW = [(95.0, 1e6)]
TARGET_NOW = [(104.0, 9e6), (104.2, 9e6)]  # the long's target: a short cluster above


async def write(pool: AsyncConnectionPool, maps: list[Heatmap], at: datetime) -> None:
    async with pool.connection() as conn, conn.transaction():
        await write_heatmaps(conn, maps, at, "pre_trade", "tests", 1)
        await write_snapshots(conn, [Ticker(symbol=SYMBOL, time=at, last_price=PRICE)], "sim")


def stale_signal(data_time: datetime) -> TradeSignalled:
    """The ranker's signal on TARGET_NOW, its data older than HEATMAP_MAX_AGE_S."""
    view = MarketView(symbol=SYMBOL, direction="long", price=PRICE, target=PriceRange(low=104.0, high=104.2),
                      wick_pct=1.0, data_time=data_time)  # fmt: skip
    return TradeSignalled(
        signal_id=uuid.uuid4(), time=datetime.now(UTC), cycle_id="refresh-test", symbol=SYMBOL,
        direction="long", rank=1, score=90, entry_mode="conservative", entry_price=103.79,
        stop_loss=102.75, take_profit=104.1, target_price=104.1, target_low=104.0, target_high=104.2,
        price=PRICE, imbalance=0.8, cluster_size_pct=150, success_rate=0.5, oi_change_15m_pct=4,
        volume_ratio_5m=2, price_change_5m_pct=1.2, scanner="ranker", scanner_version="1", market=view,
    )  # fmt: skip


def autotrader(
    sb: Sandbox,
    pool: AsyncConnectionPool,
    redis: Redis,
    bybit: FakeBybit,
    wait_s: float = 10.0,
    **overrides: Any,
) -> Autotrader:
    settings = sb.settings.model_copy(update={
        "service_instance": "autotrader-test", "bybit_endpoint_rest": bybit.url,
        "heatmap_max_age_s": 300.0, "pre_trade_refresh_wait_s": wait_s, "trade_majors": "",
        "entry_beyond_pct": 0.2, "take_profit_front_run_pct": 0.0, "stop_default_wick_pct": 1.0,
        "min_reward_risk": 0.1, **overrides,
    })  # fmt: skip
    bus = Bus(redis, settings.bus_namespace, source="autotrader@test")
    ctx = ServiceContext(
        "autotrader", "liquidation_hunter", Autotrader.version, settings, pool, redis, bus
    )
    return Autotrader(ctx)


async def collector(
    bus: Bus, pool: AsyncConnectionPool, maps: list[Heatmap], answered: asyncio.Event
) -> None:
    """The liquidation collector's side: a pre-trade request → new heatmaps → heatmap.refreshed."""

    async def handle(ds: list[Delivery]) -> None:
        for d in ds:
            assert isinstance(d.event, HeatmapRefreshRequested)
            assert d.event.symbol == SYMBOL and d.event.reason == "pre_trade"
            at = datetime.now(UTC)
            # another coin's refresh first: it must not end the autotrader's wait for this coin
            await bus.publish(STREAM_HEATMAPS_REFRESHED, HeatmapsRefreshed(
                symbol="ETHUSDT", source="sim", time=at, timeframes=["12h"], level_count=1,
                trigger="spike"))  # fmt: skip
            await write(pool, [m.model_copy(update={"time": at}) for m in maps], at)
            await bus.publish(STREAM_HEATMAPS_REFRESHED, HeatmapsRefreshed(
                symbol=SYMBOL, source="sim", time=at, timeframes=list(TIMEFRAMES),
                level_count=sum(len(m.levels) for m in maps), trigger="pre_trade"))  # fmt: skip
            answered.set()

    stop = asyncio.Event()
    consumer = bus.consumer(STREAM_REFRESH_REQUESTS, "collector", "c1", handle, block_ms=50)
    task = asyncio.create_task(consumer.run(stop))
    try:
        await answered.wait()
    finally:
        stop.set()
        await task


async def run_case(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit,
    after: list[Heatmap],
) -> tuple[str, str | None, dict[str, Any], list[tuple[Any, ...]]]:  # fmt: skip
    old = datetime.now(UTC) - timedelta(minutes=20)
    await write(fresh_pool, heatmaps(old, TARGET_NOW, SMALL_BELOW), old)
    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit)
    answered = asyncio.Event()
    sig = stale_signal(old)
    try:
        await asyncio.wait_for(
            asyncio.gather(svc.decide(sig), collector(svc.ctx.bus, fresh_pool, after, answered)), 30
        )
    finally:
        await svc.venue.close()
        await svc.market.aclose()
    assert answered.is_set()
    async with fresh_pool.connection() as conn:
        decision = await (await conn.execute(
            "SELECT decision, reason, detail FROM autotrader_decisions WHERE signal_id = %s", (sig.signal_id,)
        )).fetchone()  # fmt: skip
        orders = await (await conn.execute(
            "SELECT price, stop_loss, take_profit, status FROM orders WHERE signal_id = %s", (sig.signal_id,)
        )).fetchall()  # fmt: skip
    assert decision is not None
    return decision[0], decision[1], decision[2], orders


async def test_stale_signal_whose_target_vanished_is_dropped_with_the_reason(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    # after the refresh the shorts above are gone (hunted): only longs below — the bias is short
    after = heatmaps(datetime.now(UTC), [(101.0, 1e5)], [(96.0, 9e6), (95.8, 9e6)])
    decision, reason, _, orders = await run_case(fresh, fresh_pool, fresh_redis, bybit, after)
    assert decision == "skipped" and orders == []
    assert reason is not None and reason.startswith("target_gone:")
    assert "no longer holds" in reason and "bias short" in reason


async def test_stale_signal_whose_target_moved_is_traded_at_the_new_plan(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    # after the refresh the short cluster sits at 106.0–106.2 (was 104.0–104.2)
    # (and nothing below price: the stop is the wick stop)
    after = heatmaps(datetime.now(UTC), [(106.0, 9e6), (106.2, 9e6)], [])
    decision, reason, detail, orders = await run_case(fresh, fresh_pool, fresh_redis, bybit, after)
    assert decision == "traded", reason
    assert detail["refreshed"] is True
    assert detail["market"]["target"]["low"] == pytest.approx(106.0)
    # the new plan: entry 0.2 % below 106.0 = 105.788 → 105.78 on the 0.01 grid (rounded away
    # from the target); TP the centre
    # 106.1; stop 1 % (default wick) below the entry 104.7222 → 104.72 (floored on the grid)
    assert len(orders) == 1
    price, stop, tp, status = orders[0]
    assert (price, tp, stop) == (Decimal("105.78"), Decimal("106.10"), Decimal("104.72"))
    assert status != "submitting"  # placed at the paper venue
    assert Decimal(detail["plan"]["take_profit"]) == Decimal("106.1")


async def test_no_refresh_in_time_drops_the_signal(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    old = datetime.now(UTC) - timedelta(minutes=20)
    await write(fresh_pool, heatmaps(old, TARGET_NOW, SMALL_BELOW), old)
    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit, wait_s=0.5)
    sig = stale_signal(old)
    try:
        await svc.decide(sig)
    finally:
        await svc.venue.close()
        await svc.market.aclose()
    async with fresh_pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT decision, reason FROM autotrader_decisions WHERE signal_id = %s", (sig.signal_id,)
        )).fetchone()  # fmt: skip
    assert row is not None and row[0] == "skipped" and "no refresh within" in row[1]


async def test_fresh_signal_whose_plan_is_not_sane_is_refused_not_ordered(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    """The money bug: an aggressive entry on a one-level target with the SPEC's front-run puts
    the take-profit (104 × 0.995) below the entry (104). Refused with the reason, no order."""
    now = datetime.now(UTC)
    await write(fresh_pool, heatmaps(now, [(104.0, 9e6)], SMALL_BELOW), now)
    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit, entry_mode="aggressive",
                     take_profit_front_run_pct=0.5)  # fmt: skip
    view = MarketView(symbol=SYMBOL, direction="long", price=PRICE,
                      target=PriceRange(low=104.0, high=104.0), data_time=now)  # fmt: skip
    sig = stale_signal(now).model_copy(
        update={"market": view, "target_low": 104.0, "target_high": 104.0}
    )
    try:
        await svc.decide(sig)
    finally:
        await svc.venue.close()
        await svc.market.aclose()
    async with fresh_pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT decision, reason FROM autotrader_decisions WHERE signal_id = %s", (sig.signal_id,)
        )).fetchone()  # fmt: skip
        orders = await (await conn.execute("SELECT count(*) FROM orders")).fetchone()
        requests = await fresh_redis.xlen(
            f"{fresh.settings.bus_namespace}:stream:{STREAM_REFRESH_REQUESTS}"
        )
    assert row is not None and row[0] == "refused"
    assert row[1].startswith("take_profit_not_beyond_entry:") and "103.48" in row[1]
    assert orders == (0,) and requests == 0  # fresh data: no refresh asked
