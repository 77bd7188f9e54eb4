"""The engine's rules on hand-built bars: next-bar fills, SL/TP inside a bar, gaps, the stop
first when one bar touches both, reversals, funding, the final close."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.backtest.engine import Costs, run
from quantcore.strategies import Bars, SignalFrame

FREE = Costs(commission=0.0)


def bars(
    o: list[float],
    h: list[float],
    lo: list[float],
    c: list[float],
    funding: list[float] | None = None,
) -> Bars:
    n = len(o)
    return Bars(
        symbol="TESTUSDT", start_s=np.arange(n, dtype=np.int64) * 60, open=np.array(o, float),
        high=np.array(h, float), low=np.array(lo, float), close=np.array(c, float),
        volume=np.ones(n), funding=None if funding is None else np.array(funding, float),
    )  # fmt: skip


def frame(entry: list[int], sl: float | None = None, tp: float | None = None) -> SignalFrame:
    n = len(entry)
    return SignalFrame(
        entry=np.array(entry, np.int8),
        sl_pct=None if sl is None else np.full(n, sl),
        tp_pct=None if tp is None else np.full(n, tp),
    )


def test_fills_at_next_open_and_closes_at_the_end() -> None:
    b = bars([100, 101, 102, 103], [100, 102, 103, 104], [100, 100, 101, 102], [100, 101, 102, 103])
    r = run(b, frame([1, 0, 0, 0]), FREE)
    assert list(r.trades.entry_bar) == [1] and r.trades.entry_price[0] == 101
    assert r.trades.reason == ["end"] and r.trades.exit_price[0] == 103
    assert r.final_return_pct == pytest.approx((103 / 101 - 1) * 100)
    assert list(r.position) == [0, 1, 1, 1]


def test_stop_when_a_bar_touches_both_and_take_profit_otherwise() -> None:
    # long at 100, SL 2 % = 98, TP 3 % = 103; bar 2 touches both: the stop fills
    b = bars([100, 100, 100, 100], [100, 101, 104, 100], [100, 99, 97, 100], [100, 100, 100, 100])
    r = run(b, frame([1, 0, 0, 0], sl=2, tp=3), FREE)
    assert r.trades.reason == ["stop_loss"] and r.trades.exit_price[0] == pytest.approx(98)
    b2 = bars([100, 100, 100, 100], [100, 101, 104, 100], [100, 99, 99, 100], [100, 100, 100, 100])
    r2 = run(b2, frame([1, 0, 0, 0], sl=2, tp=3), FREE)
    assert r2.trades.reason == ["take_profit"] and r2.trades.exit_price[0] == pytest.approx(103)
    assert r2.trades.exit_bar[0] == 2


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    b = bars([100, 100, 90, 90], [100, 100, 91, 90], [100, 99, 89, 90], [100, 100, 90, 90])
    r = run(b, frame([1, 0, 0, 0], sl=2), FREE)
    assert r.trades.reason == ["stop_loss"] and r.trades.exit_price[0] == 90


def test_short_reversal_and_commission() -> None:
    b = bars([100, 100, 110, 120, 120], [100] * 5, [100] * 5, [100, 110, 120, 120, 120])
    b = Bars(
        **{**b.__dict__, "high": np.maximum(b.open, b.close), "low": np.minimum(b.open, b.close)}
    )
    r = run(b, frame([-1, 1, 0, 0, 0]), Costs(commission=0.001))
    assert list(r.trades.side) == [-1, 1] and r.trades.reason == ["reverse", "end"]
    assert r.trades.entry_price[1] == 110 and r.trades.exit_price[0] == 110
    units = 1 / (100 * 1.001)
    eq1 = 1 - units * 10 - 0.001 * units * (100 + 110)
    assert r.trades.pnl_pct[0] == pytest.approx((eq1 - 1) * 100)


def test_funding_paid_by_longs() -> None:
    b = bars([100] * 4, [100] * 4, [100] * 4, [100] * 4, funding=[0, 0.01, 0, 0])
    r = run(b, frame([1, 0, 0, 0]), FREE)  # open from bar 1: pays at bar 1's close
    assert r.trades.funding[0] == pytest.approx(0.01)
    assert r.final_return_pct == pytest.approx(-1.0)
    r_short = run(b, frame([-1, 0, 0, 0]), FREE)
    assert r_short.final_return_pct == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=2, max_value=300).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from([-1, 0, 0, 0, 1]), min_size=n, max_size=n),
            st.lists(st.floats(min_value=0.95, max_value=1.05), min_size=n, max_size=n),
            st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0001, -0.0002]), min_size=n, max_size=n),
        )
    ),
    st.sampled_from([0.0, 0.00055, 0.001]),
    st.sampled_from([0.0, 0.0005]),
    st.sampled_from([1.0, 0.5]),
)
def test_vectorised_path_equals_the_trade_loop(
    data: tuple[list[int], list[float], list[float]], comm: float, slip: float, size: float
) -> None:
    entry, steps, funding = data
    close = 100 * np.cumprod(steps)
    open_ = np.concatenate([[100.0], close[:-1]])
    b = Bars(symbol="X", start_s=np.arange(len(entry), dtype=np.int64) * 60, open=open_,
             high=np.maximum(open_, close) * 1.01, low=np.minimum(open_, close) * 0.99, close=close,
             volume=np.ones(len(entry)), funding=np.array(funding))  # fmt: skip
    fr = SignalFrame(entry=np.array(entry, np.int8))
    costs = Costs(commission=comm, slippage=slip, size=size)
    fast, slow = run(b, fr, costs, vectorised=True), run(b, fr, costs, vectorised=False)
    np.testing.assert_allclose(fast.equity, slow.equity, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(fast.position, slow.position)
    assert fast.trades.reason == slow.trades.reason
    for col in ("side", "entry_bar", "exit_bar"):
        np.testing.assert_array_equal(getattr(fast.trades, col), getattr(slow.trades, col))
    for col in (
        "entry_price",
        "exit_price",
        "units",
        "pnl_pct",
        "return_pct",
        "fees",
        "funding",
        "equity_before",
    ):
        np.testing.assert_allclose(
            getattr(fast.trades, col), getattr(slow.trades, col), rtol=1e-9, atol=1e-12
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-0.03, 0.03), st.floats(0, 0.03), st.floats(0, 0.03)),
             min_size=3, max_size=40),
    st.sampled_from([1, -1]), st.floats(0.2, 4), st.floats(0.2, 6),
    st.sampled_from([None, 0.01]),
)  # fmt: skip
def test_the_engine_closes_at_the_first_bar_the_shared_exit_rule_fires(
    moves: list[tuple[float, float, float]], side: int, sl: float, tp: float, tick: float | None
) -> None:
    """The engine's stop/target is matching.first_exit bar by bar (the paper venue's rule) on
    the autotrader's levels (plugin.venue_levels): a plain loop over the bars agrees."""
    from dataclasses import replace

    from quantcore.math import matching
    from quantcore.trading import plugin

    o, h, lo, c = [], [], [], []
    price = 100.0
    for gap, up, down in moves:
        op = price * (1 + gap)
        cl = op * (1 + (up - down) / 2)
        o.append(op)
        h.append(max(op, cl) * (1 + up))
        lo.append(min(op, cl) * (1 - down))
        c.append(cl)
        price = cl
    b = replace(bars(o, h, lo, c), tick_size=tick)
    slip = 0.0005
    r = run(b, frame([side] + [0] * (len(o) - 1), sl=sl, tp=tp), Costs(slippage=slip))
    fill = o[1] * (1 + side * slip)
    d_sl, d_tp = plugin.venue_levels(side, fill, sl, tp, tick)
    assert d_sl is not None and d_tp is not None
    expected = ("end", len(o) - 1, c[-1] * (1 - side * slip))
    for j in range(1, len(o)):
        fired = matching.first_exit(side, o[j], h[j], lo[j], stop=float(d_sl),
                                    target=float(d_tp), liquidation=None, slippage=slip,
                                    gap=j > 1)  # fmt: skip
        if fired is not None:
            expected = (fired.kind, j, fired.price)
            break
    assert r.trades.reason[0] == expected[0] and r.trades.exit_bar[0] == expected[1]
    assert r.trades.exit_price[0] == pytest.approx(expected[2], rel=1e-12)
