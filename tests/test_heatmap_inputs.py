"""heatmap_inputs / risk_limit_tiers against the real schema: written, re-written, read back as
the model's arrays as of a moment (nothing later), unknown coins left empty."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from psycopg_pool import AsyncConnectionPool

from quantcore.math import liqmodel as lm
from quantcore.model.market import AccountRatio, RiskTier, TakerFlow
from quantcore.store.heatmap_inputs import (
    InputRows,
    fold_collected,
    read_inputs,
    write_account_ratios,
    write_inputs,
    write_taker_flow,
    write_tiers,
)

NOW = 1_780_000_000 // 14_400 * 14_400  # on a 4-hour boundary
DAY = 86_400


def _rows(symbols: list[str], close: float) -> InputRows:
    """Coin 0: 10 days of 4-h intervals then 3 days of 5-min ones; coin 1: one day of 5-min."""
    t4 = np.arange(NOW - 13 * DAY, NOW - 3 * DAY, 14_400, dtype=np.int64)
    t5 = np.arange(NOW - 3 * DAY, NOW + 3600, 300, dtype=np.int64)  # an hour beyond NOW too
    t5b = np.arange(NOW - DAY, NOW, 300, dtype=np.int64)
    t = np.concatenate((t4, t5, t5b))
    coin = np.concatenate((np.zeros(t4.size + t5.size, np.int64), np.ones(t5b.size, np.int64)))
    width = np.concatenate((np.full(t4.size, 14_400), np.full(t5.size + t5b.size, 300)))
    n = t.size
    price = close * (1 + 0.01 * np.sin(np.arange(n) / 50.0))
    oi = np.full(n, 1e6)
    oi[coin == 1] = np.nan  # OI history missing for coin 1
    buy = np.where(coin == 0, 3.0, np.nan)
    return InputRows(
        symbols=symbols, coin=coin, time_s=t, interval_s=width.astype(np.int64), open=price,
        high=price * 1.002, low=price * 0.998, close=price, open_interest=oi, taker_buy=buy,
        taker_sell=np.where(coin == 0, 1.0, np.nan), long_ratio=np.full(n, np.nan),
    )  # fmt: skip


async def test_inputs_round_trip_as_of_now(pool: AsyncConnectionPool) -> None:
    symbols = ["HMIAUSDT", "HMIBUSDT"]
    async with pool.connection() as conn:
        await write_inputs(conn, _rows(symbols, 100.0), "sim")
        await write_inputs(conn, _rows(symbols, 200.0), "sim")  # re-fetched: replaces
        await write_tiers(conn, [
            RiskTier(symbol="HMIAUSDT", tier=1, limit_usd=2e5, maintenance_margin_rate=0.01,
                     max_leverage=50.0),
            RiskTier(symbol="HMIAUSDT", tier=2, limit_usd=1e6, maintenance_margin_rate=0.02,
                     max_leverage=25.0),
        ], "sim")  # fmt: skip
        inp, counts = await read_inputs(
            conn, [*symbols, "HMINONEUSDT"], datetime.fromtimestamp(NOW, UTC)
        )
        past, past_counts = await read_inputs(
            conn, symbols, datetime.fromtimestamp(NOW - 5 * DAY, UTC)
        )
    assert counts.tolist() == [10 * 6 + 3 * 288, 288, 0]
    # as of 5 days ago: the 4-hour intervals (packed) and 5-minute ones ending by then only
    assert (past.end[past.width > 0] <= NOW - 5 * DAY).all()
    assert past_counts.tolist() == [5 * 6, 0]  # 4-h from 13 to 8 days ago; no 5-min then
    assert (inp.end[:2][inp.width[:2] > 0] <= NOW).all()  # nothing after now
    last = inp.close[0, -1]
    assert 190.0 < last < 210.0  # the re-written values
    assert inp.oi_usd[0, -1] == 1e6 * last
    assert np.isnan(inp.oi_usd[1, -1])  # missing OI stays unknown, not zero
    assert inp.long_share[0, -1] == 0.75  # taker buy share
    assert np.isnan(inp.long_share[1, -1])
    assert inp.tiers.mmr[:, 0].tolist() == [0.01, lm.DEFAULT_MMR, lm.DEFAULT_MMR]
    assert inp.tiers.mmr[0].tolist() == [0.01, 0.02]  # every tier, not only the first
    assert inp.tiers.limit[0].tolist() == [2e5, 1e6] and inp.tiers.max_leverage[0, 1] == 25.0
    assert np.isnan(inp.tiers.mmr[1, 1])  # no tiers stored: one of the default rate
    assert inp.max_leverage is not None and inp.max_leverage[0] == 50.0
    assert np.isnan(inp.price[2])
    grid = lm.estimate(inp)
    assert grid.value[0].sum() > 0
    assert grid.value[1].sum() == 0  # no OI: no opening flow known, no made-up levels
    assert grid.value[2].sum() == 0
    assert grid.partial.tolist() == [True, True, True]


def test_input_rows_take_open_interest_at_each_interval_end() -> None:
    from datetime import timedelta

    from quantcore.estimate.refresh import input_rows
    from quantcore.model.market import Candle, OpenInterestPoint

    t0 = datetime.fromtimestamp(NOW, UTC)
    candles = [
        Candle(symbol="XUSDT", interval="5m", start=t0 + timedelta(minutes=5 * k), open=10,
               high=11, low=9, close=10, volume=1)
        for k in range(3)
    ]  # fmt: skip
    oi = [
        OpenInterestPoint(symbol="XUSDT", time=t0 + timedelta(minutes=5), open_interest=7.0),
        OpenInterestPoint(symbol="XUSDT", time=t0 + timedelta(minutes=15), open_interest=9.0),
    ]
    rows = input_rows("XUSDT", 300, candles, oi)
    assert rows.open_interest[0] == 7.0 and rows.open_interest[2] == 9.0
    assert np.isnan(rows.open_interest[1])  # the venue had no point there: unknown, not zero
    assert rows.time_s.tolist() == [NOW, NOW + 300, NOW + 600]


def test_estimate_heatmaps_only_for_priced_coins_and_positive_levels() -> None:
    from quantcore.estimate.refresh import heatmaps

    grid = lm.naive([100.0, 50.0], [1e8, 1e7])
    maps = heatmaps(grid, ["AUSDT", "BUSDT"], np.array([100.0, np.nan]), datetime.now(UTC))
    assert {m.symbol for m in maps} == {"AUSDT"}
    assert len(maps) == 9
    assert all(lv.price > 0 and lv.value_usd > 0 for m in maps for lv in m.levels)
    assert all(m.source == "estimate" for m in maps)


async def test_stored_heatmap_scored_against_recorded_liquidations(
    pool: AsyncConnectionPool,
) -> None:
    """A stored estimate snapshot, the candles and liquidations after it, from the database."""
    from datetime import timedelta

    from quantcore.math import heatmap_eval as he
    from quantcore.model.market import Candle, Heatmap, HeatmapLevel, LiquidationEvent
    from quantcore.store.heatmap_eval import after_snapshots
    from quantcore.store.heatmaps import write_heatmaps
    from quantcore.store.market import write_candles, write_liquidations

    t0 = datetime.fromtimestamp(NOW, UTC)
    sym = "HMEVUSDT"
    hm = Heatmap(
        symbol=sym, timeframe="1y", time=t0, source="estimate", price=100.0,
        levels=(HeatmapLevel(price=95.0, value_usd=5e6), HeatmapLevel(price=110.0, value_usd=3e6)),
    )  # fmt: skip
    # price falls to 94.5 within the hour (reaches 95), never reaches 110
    candles = [
        Candle(symbol=sym, start=t0 + timedelta(minutes=m), open=100, high=100.5,
               low=94.5 if m == 30 else 99.5, close=100, volume=1)
        for m in range(-1, 120)
    ]  # fmt: skip
    liqs = [
        LiquidationEvent(symbol=sym, time=t0 + timedelta(minutes=31), side="long", price=95.2,
                         qty=1000, source="sim", event_key="hmev-1"),
        LiquidationEvent(symbol=sym, time=t0 + timedelta(minutes=31), side="long", price=99.0,
                         qty=100, source="sim", event_key="hmev-2"),
    ]  # fmt: skip
    async with pool.connection() as conn:
        await write_heatmaps(conn, [hm], t0, "test", "test", 1)
        await write_candles(conn, candles, "sim")
        await write_liquidations(conn, liqs)
        coins = await after_snapshots(conn, "estimate", "1y", t0 + timedelta(hours=1), 2.0)
    mine = [c for c in coins if c.symbol == sym]
    assert len(mine) == 1
    c = mine[0]
    assert c.price == 100.0 and c.level_price.tolist() == [95.0, 110.0]
    pk = he.peaks(c.level_price, c.level_value, c.price, top=10)
    reached = he.reach_times(pk.price, c.candle_start_s, c.candle_low, c.candle_high)
    r = he.realised(pk.price, reached, c.liq_time_s, c.liq_price, c.liq_value)
    assert (r.reached, r.hit) == (1, 1)
    assert r.recall_pct == 100.0 * 95.2 * 1000 / (95.2 * 1000 + 99.0 * 100)


async def test_estimate_as_of_a_past_moment_ignores_what_came_later(
    pool: AsyncConnectionPool,
) -> None:
    """The backtester's view: the estimate as of t is the same whether or not a crash after t
    has been stored since."""
    from dataclasses import replace

    from quantcore.estimate.refresh import estimate_as_of

    symbols = ["HMASAUSDT", "HMASBUSDT"]
    rows = _rows(symbols, 50.0)
    t = datetime.fromtimestamp(NOW - DAY, UTC)
    later = rows.time_s >= NOW - DAY
    async with pool.connection() as conn:
        await write_inputs(conn, rows, "sim")
        before = await estimate_as_of(conn, symbols, t)
        crash = replace(rows, low=np.where(later, rows.low * 0.5, rows.low))
        await write_inputs(conn, crash, "sim")  # the crash after t is stored now
        after = await estimate_as_of(conn, symbols, t)
        now_view = await estimate_as_of(conn, symbols, datetime.fromtimestamp(NOW, UTC))
    assert np.array_equal(before.grid.value, after.grid.value)
    assert before.grid.value[0].sum() > 0
    assert now_view.grid.value[0].sum() < before.grid.value[0].sum()  # the crash took levels
    assert before.partial(0)  # 10 days of history
    assert before.intervals[1] == 0  # coin 1's history starts at t: nothing as of t
    assert now_view.without_oi[1] == now_view.intervals[1] > 0  # and has no OI: partial
    assert now_view.partial(1) and now_view.grid.value[1].sum() == 0


async def test_collected_flow_and_ratio_fold_into_the_intervals(pool: AsyncConnectionPool) -> None:
    """The market collector's taker flow (per minute, added up across messages) and account
    ratios fill the 5-minute and 4-hour intervals; an interval nobody saw trade in keeps NULL
    (unknown, never a zero); the model reads the long share from them (liqmodel.long_share)."""
    sym = "HMFOLDUSDT"
    at = lambda s: datetime.fromtimestamp(s, UTC)  # noqa: E731
    t5 = NOW - 3600  # one 5-minute interval
    t4 = NOW - 4 * DAY  # one 4-hour interval (before the recent 5-minute days)
    rows = InputRows(
        symbols=[sym], coin=np.zeros(3, np.int64), time_s=np.array([t4, t5, t5 + 300]),
        interval_s=np.array([14_400, 300, 300]), open=np.full(3, 10.0), high=np.full(3, 11.0),
        low=np.full(3, 9.0), close=np.full(3, 10.0), open_interest=np.full(3, 1e5),
        taker_buy=np.full(3, np.nan), taker_sell=np.full(3, np.nan), long_ratio=np.full(3, np.nan),
    )  # fmt: skip
    flows = [
        TakerFlow(symbol=sym, minute=at(t5), buy_qty=2.0, sell_qty=1.0, trades=3),
        TakerFlow(symbol=sym, minute=at(t5), buy_qty=1.0, sell_qty=0.0, trades=1),  # same minute
        TakerFlow(symbol=sym, minute=at(t5 + 240), buy_qty=0.0, sell_qty=4.0, trades=2),
        TakerFlow(symbol=sym, minute=at(t4 + 600), buy_qty=5.0, sell_qty=5.0, trades=9),
    ]
    ratios = [
        AccountRatio(symbol=sym, time=at(t5 + 300), period_s=300, long_ratio=0.6),
        AccountRatio(symbol=sym, time=at(t4 + 14_400), period_s=14_400, long_ratio=0.7),
    ]
    async with pool.connection() as conn:
        await write_inputs(conn, rows, "sim")
        await write_taker_flow(conn, flows[:2], "sim")
        await write_taker_flow(conn, flows[2:], "sim")  # a later flush adds to the minute
        await write_account_ratios(conn, ratios, "sim")
        assert await fold_collected(conn, sym, at(t4)) == 3
        assert await fold_collected(conn, sym, at(t4)) == 0  # nothing new: nothing rewritten
        cur = await conn.execute(
            "SELECT interval_s, taker_buy, taker_sell, long_ratio FROM heatmap_inputs"
            " WHERE symbol = %s ORDER BY time",
            (sym,),
        )
        got = await cur.fetchall()
        inp, _ = await read_inputs(conn, [sym], at(NOW))
    assert got == [(14_400, 5.0, 5.0, 0.7), (300, 3.0, 5.0, 0.6), (300, None, None, 0.6)]
    share = inp.long_share[0][np.isfinite(inp.open[0])]
    # the taker buy share is the split (the account ratio is weighted 0 by default: a stock)
    assert share[:2].tolist() == [0.5, 3 / 8] and np.isnan(share[2])
