"""The plan announced is the orders placed, to the tick (issue 11).

The market collector's path writes the venue's grid (a fake Bybit REST server's
instruments-info, tick 0.0001: prices of 7 significant digits) to `instruments`; the ranker plans the signal on that grid
(`Ranker.plan`); the signal goes on the bus to the broadcaster, which sends it to the fake
Telegram; the autotrader decides the same signal and places it at the paper venue. Every
entry, the stop and the take-profit in the message equal the paper venue's orders exactly.
The target's edges are chosen off the grid, so a plan made without the grid would announce
prices the venue never gets, and the broadcaster's usual 6 significant digits would too
(both asserted: the test can fail).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.bus import Bus
from quantcore.model.events import STREAM_SIGNALS, TradeSignalled
from quantcore.model.plan import EntryMode, MarketView, PriceRange, TradePlan
from quantcore.service import ServiceContext
from quantcore.store.instruments import write_instruments
from quantcore.store.trades import order_link_id_for
from quantcore.testing import Sandbox
from quantcore.trading.decision import decide
from svc_autotrader.service import Autotrader
from svc_broadcaster.messages import fmt_price
from svc_ranker.service import Ranker
from tests.broadcaster.conftest import make_broadcaster, running, telegram_settings
from tests.conftest import aeventually
from tests.fakes.bybit import PRICE, SYMBOL, FakeBybit
from tests.fakes.telegram import FakeTelegram

TICK = "0.0001"
# a long's target above the price, its edges off the 0.01 grid
VIEW = MarketView(symbol=SYMBOL, direction="long", price=PRICE,
                  target=PriceRange(low=104.03777, high=106.81913), wick_pct=1.37,
                  next_opposite=PriceRange(low=97.1234, high=97.5551))  # fmt: skip
SETTINGS: dict[str, Any] = {
    "trade_majors": "", "entry_beyond_pct": 0.37, "take_profit_front_run_pct": 0.21,
    "stop_beyond_pct": 0.5, "min_reward_risk": 0.1, "ladder_orders": 4, "ladder_range_pct": 1.3,
}  # fmt: skip


@pytest.fixture
async def bybit() -> AsyncIterator[FakeBybit]:
    server = FakeBybit(tick=TICK)
    await server.start()
    yield server
    await server.stop()


def context(sb: Sandbox, pool: AsyncConnectionPool, redis: Redis, name: str,
            **overrides: Any) -> ServiceContext:  # fmt: skip
    settings = sb.settings.model_copy(
        update={"service_instance": f"{name}-test", **SETTINGS, **overrides}
    )
    bus = Bus(redis, settings.bus_namespace, source=f"{name}@test")
    return ServiceContext(name, "liquidation_hunter", "1.0.0", settings, pool, redis, bus)


def announced(text: str) -> tuple[list[Decimal], Decimal, Decimal]:
    """The ladder, SL and TP of the Telegram message, as numbers."""
    entry = re.search(r"Entry <code>([^<]+)</code>", text)
    levels = re.search(r"SL <code>([^<]+)</code> · TP <code>([^<]+)</code>", text)
    assert entry is not None and levels is not None, text
    num = lambda s: Decimal(s.strip().replace(",", ""))  # noqa: E731
    return [num(p) for p in entry.group(1).split("/")], num(levels.group(1)), num(levels.group(2))


@pytest.mark.parametrize("mode", ["conservative", "scaled"])
async def test_the_broadcast_plan_is_the_paper_venues_orders_to_the_tick(
    mode: EntryMode, fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis,
    bybit: FakeBybit, telegram: FakeTelegram,
) -> None:  # fmt: skip
    # the market collector's path: the venue's instruments → the instruments table
    market = BybitMarketData(bybit.url, 50.0)
    try:
        instruments = await market.instruments()
    finally:
        await market.aclose()
    async with fresh_pool.connection() as conn:
        assert await write_instruments(conn, instruments, "sim", datetime.now(UTC)) == 1

    ranker = Ranker(context(fresh, fresh_pool, fresh_redis, "ranker", entry_mode=mode))
    async with fresh_pool.connection() as conn:
        plan = await ranker.plan(conn, VIEW.model_copy(update={"data_time": datetime.now(UTC)}))
    assert isinstance(plan, TradePlan), plan
    assert plan.tick_size == float(TICK) and len(plan.orders) == (4 if mode == "scaled" else 1)
    off_grid = decide(VIEW, ranker.decision)  # what the ranker announced before: not the orders
    assert isinstance(off_grid, TradePlan)
    assert off_grid.entries != plan.entries and off_grid.stop_loss != plan.stop_loss
    assert any(fmt_price(float(p)).replace(",", "") != str(p) for p in plan.entries)

    view = VIEW.model_copy(update={"data_time": datetime.now(UTC)})
    sig = TradeSignalled(
        signal_id=uuid.uuid4(), time=datetime.now(UTC), cycle_id="grid-test", symbol=SYMBOL,
        direction="long", rank=1, score=91.0, entry_mode=plan.mode,
        entry_price=float(plan.entry), stop_loss=float(plan.stop_loss),
        take_profit=float(plan.take_profit), target_price=105.0, target_low=VIEW.target.low,
        target_high=VIEW.target.high, price=PRICE, imbalance=0.8, cluster_size_pct=150,
        success_rate=0.5, oi_change_15m_pct=4, volume_ratio_5m=2, price_change_5m_pct=1.2,
        scanner="ranker", scanner_version="1", market=view, plan=plan,
    )  # fmt: skip

    # the broadcaster sends it; the autotrader trades it at the paper venue
    bcast = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    trader = Autotrader(context(fresh, fresh_pool, fresh_redis, "autotrader", entry_mode=mode,
                                bybit_endpoint_rest=bybit.url))  # fmt: skip
    try:
        async with running(bcast):
            await bcast.ctx.bus.publish(STREAM_SIGNALS, sig, correlation_id=str(sig.signal_id))
            await trader.decide(sig, str(sig.signal_id))
            await aeventually(lambda: len(telegram.sent()) == 1)
        orders = [
            await trader.venue.get_order(SYMBOL, order_link_id_for(sig.signal_id, o.ladder_index))
            for o in plan.orders
        ]
    finally:
        await trader.venue.close()
        await trader.market.aclose()

    entries, stop, take_profit = announced(telegram.sent()[0].params["text"])
    placed = [o for o in orders if o is not None]
    assert len(placed) == len(plan.orders)  # every rung placed: equity is ample
    assert entries == [o.price for o in placed] == plan.entries
    assert all((o.stop_loss, o.take_profit) == (stop, take_profit) for o in placed)
    assert (stop, take_profit) == (plan.stop_loss, plan.take_profit)
