"""The paper venue against real PostgreSQL: fills, fees, SL/TP, liquidation, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.errors import Rejected
from quantcore.math.matching import funding_times as _funding_times
from quantcore.model.market import Candle
from quantcore.model.trading import OrderRequest
from quantcore.store.paper_venue import PaperBooks
from quantcore.venues.paper import PaperFees, PaperVenue
from tests.trading.conftest import StaticPrices

FEES = PaperFees(taker_pct=0.1, maker_pct=0.02, slippage_pct=0.0, default_leverage=10)
D = Decimal


def venue(pool: AsyncConnectionPool, prices: StaticPrices) -> PaperVenue:
    return PaperVenue(PaperBooks(pool, start_equity=10_000), prices, fees=FEES)


def limit(link: str, side: str, qty: str, price: str, **kw: object) -> OrderRequest:
    return OrderRequest(link, "SOLUSDT", side, "limit", D(qty), D(price), **kw)  # type: ignore[arg-type]


async def test_resting_limit_fills_when_price_trades_through(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    [o] = await v.place_orders(
        [limit("a1", "buy", "10", "95", stop_loss=D("90"), take_profit=D("110"))]
    )
    assert o.status == "new" and not await v.positions()
    prices.set("SOLUSDT", 96)
    assert await v.match() == 0
    prices.set("SOLUSDT", 94.5)
    assert await v.match() == 1
    [pos] = await v.positions()
    assert (pos.side, pos.size, pos.avg_price) == ("buy", D("10"), D("95"))
    assert (pos.stop_loss, pos.take_profit) == (D("90"), D("110"))  # attached SL/TP moved on
    filled = await v.get_order("SOLUSDT", "a1")
    assert filled is not None and filled.status == "filled"
    assert filled.fee == D("10") * D("95") * D("0.0002")  # maker


async def test_take_profit_closes_with_pnl_after_fees(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    start = datetime.now(UTC) - timedelta(seconds=1)
    [o] = await v.place_orders(
        [OrderRequest("m1", "SOLUSDT", "buy", "market", D("2"), take_profit=D("110"))]
    )
    assert o.status == "filled" and o.avg_fill_price == D("100")
    prices.set("SOLUSDT", 111)
    assert await v.match() == 1
    assert await v.positions() == []
    [closed] = await v.closed_pnl(start)
    fees = D("2") * D("100") * D("0.001") + D("2") * D("111") * D("0.001")
    assert closed.closed_pnl == D("2") * D("11") - fees
    assert closed.avg_exit_price == D("111")
    kinds = [(e.kind, e.trigger) for e in await v.executions(start)]
    assert kinds == [("trade", None), ("trade", "take_profit")]
    eq = await v.equity()
    assert eq.balance == D("10000") + closed.closed_pnl and eq.unrealised_pnl == 0


async def test_stop_loss_short_and_trading_stop_moves_it(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    await v.place_orders(
        [OrderRequest("s1", "SOLUSDT", "sell", "market", D("1"), stop_loss=D("105"))]
    )
    await v.set_trading_stop("SOLUSDT", stop_loss=D("101"))
    prices.set("SOLUSDT", 102)
    assert await v.match() == 1
    start = datetime.now(UTC) - timedelta(minutes=1)
    [closed] = await v.closed_pnl(start)
    assert closed.avg_exit_price == D("102") and closed.closed_pnl < 0
    with pytest.raises(Rejected):
        await v.set_trading_stop("SOLUSDT", stop_loss=D("99"))  # no position any more


async def test_liquidation_when_price_passes_the_liquidation_price(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    await v.place_orders([OrderRequest("l1", "SOLUSDT", "buy", "market", D("5"))])
    [pos] = await v.positions()
    assert pos.liq_price == D("100") * (1 - (D(1) / 10 - D("0.005")))
    prices.set("SOLUSDT", 89)
    assert await v.match() == 1
    ex = await v.executions(datetime.now(UTC) - timedelta(minutes=1))
    assert ex[-1].kind == "liquidation" and ex[-1].price == pos.liq_price


async def test_same_order_link_id_is_placed_once_even_concurrently(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v1, v2 = venue(fresh_pool, prices), venue(fresh_pool, prices)
    req = limit("dup-1", "buy", "1", "90")
    results = await asyncio.gather(
        v1.place_orders([req]), v2.place_orders([req]), v1.place_orders([req])
    )
    flags = sorted(r[0].duplicate for r in results)
    assert flags == [False, True, True]
    assert len({r[0].venue_order_id for r in results}) == 1
    assert len(await v1.open_orders()) == 1


async def test_insufficient_balance_rejects_and_reduce_only_needs_a_position(
    fresh_pool, prices
) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    [big] = await v.place_orders([OrderRequest("big", "SOLUSDT", "buy", "market", D("2000"))])
    assert big.status == "rejected" and big.reject_reason and "110007" in big.reject_reason
    [ro] = await v.place_orders(
        [OrderRequest("ro", "SOLUSDT", "sell", "market", D("1"), reduce_only=True)]
    )
    assert ro.status == "rejected"
    # the rejection is remembered: the same id placed again is the same rejected order
    [again] = await v.place_orders([OrderRequest("big", "SOLUSDT", "buy", "market", D("1"))])
    assert again.duplicate and again.status == "rejected"


async def test_amend_and_cancel(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    await v.place_orders([limit("c1", "buy", "1", "90")])
    amended = await v.amend_order("SOLUSDT", "c1", price=D("91"), qty=D("2"))
    assert (amended.price, amended.qty) == (D("91"), D("2"))
    cancelled = await v.cancel_order("SOLUSDT", "c1")
    assert cancelled is not None and cancelled.status == "cancelled"
    prices.set("SOLUSDT", 80)
    assert await v.match() == 0 and await v.positions() == []


async def test_funding_is_charged_at_each_boundary(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100, funding_rate_pct=0.01)
    v = venue(fresh_pool, prices)
    await v.place_orders([OrderRequest("f1", "SOLUSDT", "buy", "market", D("10"))])
    async with fresh_pool.connection() as conn:
        await conn.execute(
            "UPDATE paper_positions SET last_funding_at = now() - interval '17 hours'"
        )
    before = (await v.equity()).balance
    assert await v.match() >= 1
    charged = before - (await v.equity()).balance
    assert charged in (D("10") * D("100") * D("0.0001") * n for n in (2, 3))


def test_funding_boundaries() -> None:
    t = datetime(2026, 1, 1, 7, 59, tzinfo=UTC)
    assert _funding_times(t, t + timedelta(minutes=2)) == [datetime(2026, 1, 1, 8, tzinfo=UTC)]
    assert _funding_times(t, t + timedelta(hours=16, minutes=1)) == [
        datetime(2026, 1, 1, 8, tzinfo=UTC), datetime(2026, 1, 1, 16, tzinfo=UTC),
        datetime(2026, 1, 2, 0, tzinfo=UTC)]  # fmt: skip
    assert _funding_times(t, t) == []


async def test_adding_reducing_and_flipping_follow_the_matching_rules(fresh_pool, prices) -> None:
    prices.set("SOLUSDT", 100)
    v = venue(fresh_pool, prices)
    start = datetime.now(UTC) - timedelta(seconds=1)
    market = lambda link, side, qty: OrderRequest(link, "SOLUSDT", side, "market", D(qty))  # noqa: E731
    await v.place_orders([market("p1", "buy", "2")])
    prices.set("SOLUSDT", 110)
    await v.place_orders([market("p2", "buy", "2")])
    [pos] = await v.positions()
    assert (pos.side, pos.size, pos.avg_price) == ("buy", D(4), D(105))  # volume-weighted
    prices.set("SOLUSDT", 120)
    await v.place_orders([market("p3", "sell", "1")])
    [pos] = await v.positions()
    assert (pos.side, pos.size, pos.avg_price) == (
        "buy",
        D(3),
        D(105),
    )  # a reduce keeps the average
    await v.place_orders([market("p4", "sell", "5")])
    [pos] = await v.positions()
    assert (pos.side, pos.size, pos.avg_price) == ("sell", D(2), D(120))  # flipped at the fill
    [closed] = await v.closed_pnl(start)
    assert (closed.qty, closed.avg_entry_price, closed.avg_exit_price) == (D(4), D(105), D(120))
    # realised 4 × 15 = 60; of the flip's fee the closing 3 of 5 go to this close (pro rata),
    # the other 2 of 5 to the short it opened
    fees = (D(2) * 100 + D(2) * 110 + D(1) * 120 + D(3) * 120) * D("0.001")
    assert closed.closed_pnl == D(60) - fees
    assert pos.fees == D(2) * 120 * D("0.001")


async def test_a_bar_close_decision_fills_at_the_next_bar_open_like_the_backtest(
    fresh_pool, prices
) -> None:
    """`fill_from`: a market order for a decision taken at a bar's close fills at the open of
    the bar starting then (the backtester's rule, matching.signed_taker_price with slippage),
    not at the last price the fleet's latency happens to meet; without that bar (a later one
    exists already) it fills at the last price."""
    fees = PaperFees(taker_pct=0.1, maker_pct=0.02, slippage_pct=0.05, default_leverage=10)
    v = PaperVenue(PaperBooks(fresh_pool, start_equity=10_000), prices, fees=fees)
    bar = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    prices.set("SOLUSDT", 101.7)  # the market has moved on since the bar opened
    prices.bars[("SOLUSDT", bar)] = 100.0
    [o] = await v.place_orders(
        [OrderRequest("m1", "SOLUSDT", "buy", "market", D("2"), fill_from=bar)]  # type: ignore[arg-type]
    )
    assert o.avg_fill_price == D("100.0") * (1 + D("0.0005"))  # the bar's open, slipped
    late = bar + timedelta(minutes=5)  # no such bar in progress: the last price
    [o2] = await v.place_orders(
        [OrderRequest("m2", "SOLUSDT", "sell", "market", D("2"), reduce_only=True, fill_from=late)]  # type: ignore[arg-type]
    )
    assert o2.avg_fill_price == D("101.7") * (1 - D("0.0005"))


def _bar(start: datetime, o: float, h: float, lo: float, c: float) -> Candle:
    return Candle(symbol="SOLUSDT", start=start, open=o, high=h, low=lo, close=c, volume=1)


async def test_a_position_filled_at_a_bar_open_is_closed_on_the_bars_by_the_shared_rule(
    fresh_pool, prices
) -> None:
    """Between two looks the price made a bar that reached the stop and came back: the venue
    closes at the stop (matching.first_exit on the bar), as the backtester does, not at the
    last price it samples; a bar reaching both levels fills the stop."""
    bar = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    prices.set("SOLUSDT", 100)
    prices.bars[("SOLUSDT", bar)] = 100.0
    prices.candles["SOLUSDT"] = [_bar(bar, 100, 100, 100, 100)]
    v = venue(fresh_pool, prices)
    await v.place_orders([OrderRequest("b1", "SOLUSDT", "buy", "market", D("1"), fill_from=bar)])  # type: ignore[arg-type]
    await v.set_trading_stop("SOLUSDT", stop_loss=D("98"), take_profit=D("103"))
    assert await v.match() == 0
    nxt = bar + timedelta(minutes=1)
    prices.candles["SOLUSDT"] = [
        _bar(bar, 100, 101, 99, 100.5),  # no level reached
        _bar(nxt, 100.5, 103.5, 97.5, 101),  # both: the stop
        _bar(nxt + timedelta(minutes=1), 101, 101.2, 100.8, 101),
    ]
    prices.set("SOLUSDT", 101)  # the sampled price is back between the levels
    # a trader asking for the coin's position sees it closed already (as at an exchange)
    assert await v.positions("SOLUSDT") == []
    ex = await v.executions(datetime.now(UTC) - timedelta(minutes=1))
    assert ex[-1].trigger == "stop_loss" and ex[-1].price == D("98")
    assert await v.match() == 0


async def test_a_moved_stop_is_watched_on_sampled_prices_only(fresh_pool, prices) -> None:
    """A stop moved inside a bar is not checked against that bar's range (the bar may have
    reached the new level before it was there)."""
    bar = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    nxt = bar + timedelta(minutes=1)
    prices.set("SOLUSDT", 100)
    prices.bars[("SOLUSDT", bar)] = 100.0
    prices.candles["SOLUSDT"] = [_bar(bar, 100, 100, 99, 100), _bar(nxt, 100, 100, 96, 100)]
    v = venue(fresh_pool, prices)
    await v.place_orders([OrderRequest("b2", "SOLUSDT", "buy", "market", D("1"), fill_from=bar)])  # type: ignore[arg-type]
    await v.set_trading_stop("SOLUSDT", stop_loss=D("90"))
    assert await v.match() == 0  # the first bar is complete and far from 90
    await v.set_trading_stop("SOLUSDT", stop_loss=D("97"))  # moved above the low of the next
    prices.candles["SOLUSDT"].append(_bar(nxt + timedelta(minutes=1), 100, 100, 100, 100))
    assert await v.match() == 0 and len(await v.positions()) == 1  # that bar's 96 is not used
    prices.set("SOLUSDT", 96.9)
    assert await v.match() == 1


async def test_a_stop_reached_in_the_bar_in_progress_waits_for_its_close(
    fresh_pool, prices
) -> None:
    """A decision at a bar's close fills at the next bar's open, before anything inside that
    bar: the venue books a bar's exits once the bar is complete (at the level's price)."""
    bar = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    nxt = bar + timedelta(minutes=1)
    prices.set("SOLUSDT", 100)
    prices.bars[("SOLUSDT", bar)] = 100.0
    prices.candles["SOLUSDT"] = [_bar(bar, 100, 100.5, 99.5, 100)]
    v = venue(fresh_pool, prices)
    await v.place_orders([OrderRequest("b3", "SOLUSDT", "buy", "market", D("1"), fill_from=bar)])  # type: ignore[arg-type]
    await v.set_trading_stop("SOLUSDT", stop_loss=D("98"))
    prices.candles["SOLUSDT"] = [_bar(bar, 100, 100.5, 99.5, 100), _bar(nxt, 100, 100, 97, 97.5)]
    prices.set("SOLUSDT", 97.5)  # through the stop inside the bar in progress
    assert await v.match() == 0 and len(await v.positions("SOLUSDT")) == 1
    prices.candles["SOLUSDT"].append(_bar(nxt + timedelta(minutes=1), 97.5, 97.6, 97.4, 97.5))
    assert await v.match() == 1
    ex = await v.executions(datetime.now(UTC) - timedelta(minutes=1))
    assert ex[-1].trigger == "stop_loss" and ex[-1].price == D("98")


async def test_the_paper_venue_and_both_engine_paths_close_through_the_one_exit_rule(
    fresh_pool, prices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second implementation: a rule patched into `matching.first_exit` (the stop fills at
    42) changes the paper venue, the signal engine and the plan engine alike."""
    from dataclasses import replace

    import numpy as np

    from quantcore.backtest.engine import Costs, run, run_plans
    from quantcore.math import matching
    from quantcore.strategies import Bars, OrderPlan, SignalFrame

    n = 4
    b = Bars(
        symbol="SOLUSDT", start_s=np.arange(n, dtype=np.int64) * 60,
        open=np.array([100.0, 100, 100, 99]), high=np.array([100.0, 100.5, 100.2, 99.5]),
        low=np.array([100.0, 99.5, 95, 98]), close=np.array([100.0, 100, 99, 99]),
        volume=np.ones(n),
    )  # fmt: skip
    frame = SignalFrame(entry=np.array([1, 0, 0, 0], np.int8), sl_pct=np.full(n, 2.0))
    plans = [OrderPlan(bar=0, side=1, prices=np.array([100.0]), qty_per_equity=np.array([0.01]),
                       stop_loss=98.0, take_profit=110.0, leverage=2.0, expire_s=600)]  # fmt: skip
    free = Costs(commission=0.0, maker=0.0)

    async def paper_exit(link: str) -> Decimal:
        bar = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        prices.set("SOLUSDT", 100)
        prices.bars[("SOLUSDT", bar)] = 100.0
        prices.candles["SOLUSDT"] = [
            _bar(bar, 100, 100, 95, 99),
            _bar(bar + timedelta(minutes=1), 99, 99, 99, 99),
        ]
        v = venue(fresh_pool, prices)
        await v.place_orders(
            [OrderRequest(link, "SOLUSDT", "buy", "market", D("1"), fill_from=bar)]
        )  # type: ignore[arg-type]
        await v.set_trading_stop("SOLUSDT", stop_loss=D("98"))
        assert await v.match() == 1
        ex = await v.executions(datetime.now(UTC) - timedelta(minutes=1))
        assert ex[-1].trigger == "stop_loss"
        return ex[-1].price

    assert run(b, frame, free).trades.exit_price[0] == 98.0
    assert run_plans(b, plans, free).trades.exit_price[0] == 98.0
    assert await paper_exit("before") == D("98")
    rule = matching.first_exit
    monkeypatch.setattr(
        matching, "first_exit",
        lambda *a, **kw: None if (f := rule(*a, **kw)) is None else replace(f, price=type(f.price)(42)),
    )  # fmt: skip
    assert run(b, frame, free).trades.exit_price[0] == 42.0
    assert run_plans(b, plans, free).trades.exit_price[0] == 42.0
    assert await paper_exit("after") == D("42")
