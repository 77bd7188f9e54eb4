"""The autotrader trades a strategy plug-in's signals with the backtester's rules: only the
plug-ins named in AUTOTRADE_STRATEGIES; a market entry, stop and target from the fill; the side
already held kept; the opposite side reversing (close, then the entry). In-process against
real PostgreSQL and Redis, the paper venue and a fake Bybit REST server (instruments,
tickers; no klines: the entry falls back to the last price, logged)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.model.events import StrategySignalled
from quantcore.model.trading import Side
from quantcore.testing import Sandbox
from tests.autotrader.test_refresh import autotrader
from tests.fakes.bybit import PRICE, SYMBOL, FakeBybit

SLIP = Decimal("0.0005")


def plugin_signal(direction: str, strategy: str = "scanner_oi", **kw: Any) -> StrategySignalled:
    return StrategySignalled(
        signal_id=uuid.uuid4(), time=datetime.now(UTC), symbol=SYMBOL, direction=direction,
        price=PRICE, strategy=strategy, strategy_version="1", scanner=strategy,
        scanner_version="1+abcdef12", **kw,
    )  # fmt: skip


async def decision(pool: AsyncConnectionPool, sig: StrategySignalled) -> tuple[str, str | None]:
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT decision, reason FROM autotrader_decisions WHERE signal_id = %s", (sig.signal_id,)
        )).fetchone()  # fmt: skip
    assert row is not None
    return row[0], row[1]


async def test_plugin_signals_are_traded_with_the_backtest_rules(
    fresh: Sandbox,
    fresh_pool: AsyncConnectionPool,
    fresh_redis: Redis,
    bybit: FakeBybit,
) -> None:
    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit, autotrade_strategies="scanner_oi")
    try:
        # a plug-in not named in AUTOTRADE_STRATEGIES: recorded, not traded
        other = plugin_signal("long", strategy="sma_cross")
        await svc.decide_plugin(other)
        verdict, reason = await decision(fresh_pool, other)
        assert verdict == "skipped" and "not in AUTOTRADE_STRATEGIES" in (reason or "")
        assert await svc.venue.positions() == []

        # a long with stop and target: market entry, levels from the fill on the tick grid
        long = plugin_signal("long", stop_loss_pct=1.5, take_profit_pct=3.0)
        await svc.decide_plugin(long)
        assert (await decision(fresh_pool, long))[0] == "traded"
        [pos] = await svc.venue.positions()
        fill = Decimal(str(PRICE)) * (1 + SLIP)  # no bar to fill at: the last price, slipped
        assert (pos.side, pos.avg_price) == (Side.BUY, fill)
        assert pos.stop_loss == (fill * Decimal("0.985")).quantize(Decimal("0.01"))
        assert pos.take_profit == (fill * Decimal("1.03")).quantize(Decimal("0.01"))
        async with fresh_pool.connection() as conn:
            row = await (await conn.execute(
                "SELECT scanner, scanner_version, status, stop_loss, take_profit FROM trades "
                "WHERE signal_id = %s", (long.signal_id,))).fetchone()  # fmt: skip
        assert row == ("scanner_oi", "1+abcdef12", "pending", pos.stop_loss, pos.take_profit)

        # the side already held: kept, the signal skipped
        again = plugin_signal("long")
        await svc.decide_plugin(again)
        verdict, reason = await decision(fresh_pool, again)
        assert verdict == "skipped" and "already long" in (reason or "")

        # the opposite side: a reversal — the long closed, a short opened, in one venue call
        short = plugin_signal("short")
        await svc.decide_plugin(short)
        assert (await decision(fresh_pool, short))[0] == "traded"
        [pos] = await svc.venue.positions()
        assert pos.side == Side.SELL and pos.avg_price == Decimal(str(PRICE)) * (1 - SLIP)
        closes = await svc.venue.closed_pnl(datetime(2020, 1, 1, tzinfo=UTC), SYMBOL)
        assert len(closes) == 1 and closes[0].avg_exit_price == Decimal(str(PRICE)) * (1 - SLIP)
        # a decided signal is never decided again (redelivery)
        await svc.decide_plugin(short)
        assert len(await svc.venue.closed_pnl(datetime(2020, 1, 1, tzinfo=UTC), SYMBOL)) == 1
    finally:
        await svc.venue.close()
        await svc.market.aclose()


async def test_a_reversal_never_closes_a_position_that_is_not_the_plugins(
    fresh: Sandbox,
    fresh_pool: AsyncConnectionPool,
    fresh_redis: Redis,
    bybit: FakeBybit,
) -> None:
    from quantcore.model.trading import OrderRequest, OrderType

    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit, autotrade_strategies="scanner_oi")
    try:
        # the owner's own long, placed at the venue by hand (no trade row of ours yet)
        await svc.venue.place_orders(
            [OrderRequest("by-hand-1", SYMBOL, Side.BUY, OrderType.MARKET, Decimal("1"))]
        )
        short = plugin_signal("short")
        await svc.decide_plugin(short)
        verdict, reason = await decision(fresh_pool, short)
        assert verdict == "refused" and "not scanner_oi: no reversal" in (reason or "")
        [pos] = await svc.venue.positions()
        assert (pos.side, pos.size) == (Side.BUY, Decimal("1"))  # untouched
    finally:
        await svc.venue.close()
        await svc.market.aclose()


async def test_a_position_the_venue_just_closed_does_not_block_the_next_signal(
    fresh: Sandbox,
    fresh_pool: AsyncConnectionPool,
    fresh_redis: Redis,
    bybit: FakeBybit,
) -> None:
    """The venue closed the plug-in's position by its stop between two of the position
    monitor's passes: the trade row is still open, but it holds nothing — the next signal (the
    other side) is traded, as the backtest opens again at the close of the bar a stop fired in."""
    from quantcore.store import positions as pstore

    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit, autotrade_strategies="scanner_oi")
    try:
        long = plugin_signal("long", stop_loss_pct=1.5)
        await svc.decide_plugin(long)
        [pos] = await svc.venue.positions()
        async with fresh_pool.connection() as conn:
            trade_id = (await (await conn.execute(
                "SELECT trade_id FROM trades WHERE signal_id = %s", (long.signal_id,))).fetchone())[0]  # type: ignore[index]  # fmt: skip
            await pstore.mark_open(conn, trade_id, pos.avg_price, pos.size, datetime.now(UTC))
        # the stop above the price: the venue's next look fires it (the row stays open)
        await svc.venue.set_trading_stop(SYMBOL, stop_loss=Decimal(str(PRICE)) * Decimal("1.01"))
        short = plugin_signal("short")
        await svc.decide_plugin(short)
        verdict, reason = await decision(fresh_pool, short)
        assert verdict == "traded", reason
        [pos] = await svc.venue.positions()
        assert pos.side == Side.SELL
    finally:
        await svc.venue.close()
        await svc.market.aclose()
