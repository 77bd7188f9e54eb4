"""Ladder, sizing, SL/TP, the trailing ladder, risk guards and track records."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcore.config import parse_trailing_ladder
from quantcore.trading import ladder, risk, sizing, stats, trailing

prices = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False)
STEPS = parse_trailing_ladder("10:0,20:10,50:30")


# --- ladder -------------------------------------------------------------------------------------


@given(
    near=prices,
    range_pct=st.floats(0.1, 40),
    n=st.integers(1, 20),
    sizing_=st.sampled_from(["flat", "increasing", "decreasing"]),
    direction=st.sampled_from(["long", "short"]),
)
def test_ladder_sums_to_one_and_stays_in_range(near, range_pct, n, sizing_, direction) -> None:
    lo_hi = ladder.ladder_range(direction, near, range_pct)
    rungs = ladder.ladder(*lo_hi, n, sizing_)
    assert len(rungs) == n
    assert sum(r.fraction for r in rungs) == pytest.approx(1.0, abs=1e-12)
    lo, hi = min(lo_hi), max(lo_hi)
    assert all(lo * (1 - 1e-12) <= r.price <= hi * (1 + 1e-12) for r in rungs)
    # nearest first: longs step down, shorts step up
    ps = [r.price for r in rungs]
    assert ps == sorted(ps, reverse=direction == "long")


def test_ladder_increasing_and_decreasing_by_side() -> None:
    for direction in ("long", "short"):
        near, far = ladder.ladder_range(direction, 100, 5)
        inc = ladder.ladder(near, far, 5, "increasing")
        dec = ladder.ladder(near, far, 5, "decreasing")
        # increasing: more size further from the market (lower for longs, higher for shorts)
        by_price = sorted(inc, key=lambda r: r.price, reverse=direction == "long")
        assert [r.fraction for r in by_price] == sorted(r.fraction for r in inc)
        assert [r.fraction for r in dec] == sorted((r.fraction for r in dec), reverse=True)
        assert ladder.average_price(inc) != ladder.average_price(dec)
    with pytest.raises(ValueError, match=r"1\.\.20 orders"):
        ladder.ladder(100, 90, 21)


@given(total=st.integers(1, 10_000), fr=st.lists(st.floats(0.01, 1), min_size=1, max_size=20))
def test_split_qty_never_exceeds_total_and_respects_steps(total, fr) -> None:
    s = sum(fr)
    parts = sizing.split_qty(Decimal(total) / 10, [f / s for f in fr], 0.1, 0.1)
    assert sum(parts) <= Decimal(total) / 10
    assert all((p / Decimal("0.1")) == (p / Decimal("0.1")).to_integral_value() for p in parts)


# --- sizing -------------------------------------------------------------------------------------


def test_size_from_equity_at_risk_and_cap() -> None:
    # 1 % of 10,000 = 100 at risk; stop 5 below entry → 20 units
    assert sizing.risk_qty(10_000, 1.0, 100, 95) == pytest.approx(20)
    # 20 units × 100 = 2,000 notional, 400 margin at 5x: within 20 % of equity
    assert sizing.capped_qty(20, 100, 10_000, 5, 20) == pytest.approx(20)
    # a tight stop would ask for 200 units: the 20 % margin cap allows 100
    assert sizing.capped_qty(
        sizing.risk_qty(10_000, 1, 100, 99.5), 100, 10_000, 5, 20
    ) == pytest.approx(100)
    assert sizing.risk_qty(10_000, 1, 100, 100) == 0
    assert sizing.floor_to_step(1.2399, 0.01) == Decimal("1.23")
    assert sizing.round_to_tick(113_680.04, 0.1) == Decimal("113680.0")


# --- trailing ladder ----------------------------------------------------------------------------


def test_trailing_ladder_steps() -> None:
    # long from 100 at 5x on margin: +10 % margin = +2 % price → breakeven
    m = trailing.trailing_stop("long", 100, 10.5, 90, STEPS, 5, "margin")
    assert m is not None and (m.step, m.stop) == (1, pytest.approx(100))
    m = trailing.trailing_stop("long", 100, 25, 100, STEPS, 5, "margin")
    assert m is not None and (m.step, m.stop) == (2, pytest.approx(102))  # lock +10 % margin = +2 %
    m = trailing.trailing_stop("short", 100, 55, 110, STEPS, 1, "price")
    assert m is not None and (m.step, m.stop) == (3, pytest.approx(70))
    assert trailing.trailing_stop("long", 100, 9.9, 90, STEPS, 5, "margin") is None


@given(
    direction=st.sampled_from(["long", "short"]),
    entry=st.floats(1, 1e5),
    profits=st.lists(st.floats(-50, 200), min_size=1, max_size=30),
    lev=st.floats(1, 50),
    basis=st.sampled_from(["price", "margin"]),
)
def test_trailing_never_loosens(direction, entry, profits, lev, basis) -> None:
    stop = entry * (0.9 if direction == "long" else 1.1)
    best = -1e9
    for pr in profits:
        best = max(best, pr)
        move = trailing.trailing_stop(direction, entry, best, stop, STEPS, lev, basis)
        if move is not None:
            assert trailing.tighter(direction, move.stop, stop)
            stop = move.stop
        assert stop >= entry * 0.9 - 1e-9 if direction == "long" else stop <= entry * 1.1 + 1e-9


def test_trailing_ladder_setting_is_validated() -> None:
    for bad in ("10:10", "20:10,10:0", "x:1", ""):
        with pytest.raises(ValueError, match=r"PROFIT:LOCK|steps must rise"):
            parse_trailing_ladder(bad)


# --- risk guards ----------------------------------------------------------------------------------

LIMITS = risk.RiskLimits(max_open_positions=2, max_trade_equity_pct=20, max_total_equity_pct=30,
                         daily_loss_limit_pct=5)  # fmt: skip


def state(**kw: object) -> risk.RiskState:
    base = dict(
        equity=10_000.0,
        open_symbols=frozenset(),
        used_margin=0.0,
        realised_today=0.0,
        kill_switch=None,
    )
    base.update(kw)
    return risk.RiskState(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("st_kw", "symbol", "margin", "expect"),
    [
        ({}, "SOLUSDT", 1_000, None),
        ({"kill_switch": "owner paused"}, "SOLUSDT", 1_000, "kill switch"),
        ({"open_symbols": frozenset({"SOLUSDT"})}, "SOLUSDT", 1_000, "one per coin"),
        ({"open_symbols": frozenset({"A", "B"})}, "SOLUSDT", 100, "max open positions"),
        ({}, "SOLUSDT", 2_500, "trade margin"),
        ({"used_margin": 2_500.0}, "SOLUSDT", 1_000, "total margin"),
        ({"realised_today": -600.0, "equity": 9_400.0}, "SOLUSDT", 100, "daily loss limit"),
        ({"realised_today": -400.0, "equity": 9_600.0}, "SOLUSDT", 100, None),
        # nothing closed today, but the open positions are 6 % under water: refused
        ({"unrealised": -600.0, "equity": 9_400.0}, "SOLUSDT", 100, "daily loss limit"),
        # a closed loss of 3 % plus an open one of 3 %: 6 % today
        (
            {"realised_today": -300.0, "unrealised": -300.0, "equity": 9_400.0},
            "SOLUSDT",
            100,
            "daily loss limit",
        ),
        # a closed loss of 6 % offset by an open gain of 3 %: 3 % today, allowed
        ({"realised_today": -600.0, "unrealised": 300.0, "equity": 9_700.0}, "SOLUSDT", 100, None),
        ({}, "SOLUSDT", 0, "rounds to zero"),
    ],
)
def test_risk_guards(st_kw, symbol, margin, expect) -> None:
    reason = risk.refusal(state(**st_kw), LIMITS, symbol, margin)
    assert (reason is None) if expect is None else (reason is not None and expect in reason)


@given(
    start=st.floats(1, 1e9),
    realised_frac=st.floats(-1, 1),
    unrealised_frac=st.floats(-1, 1),
    limit=st.floats(0.1, 100),
)
def test_day_loss_counts_realised_and_unrealised_against_the_start_of_day(
    start: float, realised_frac: float, unrealised_frac: float, limit: float
) -> None:
    realised, unrealised = start * realised_frac / 2, start * unrealised_frac / 2
    equity = start + realised + unrealised  # the venue's equity includes unrealised PnL
    today = risk.day_loss(equity, realised, unrealised, limit)
    assert today.start_equity == pytest.approx(start, rel=1e-6)
    assert today.pnl == pytest.approx(realised + unrealised)
    loss_pct = -(realised + unrealised) / start * 100
    if loss_pct > limit * (1 + 1e-6):
        assert today.breached
    if loss_pct < limit * (1 - 1e-6):
        assert not today.breached
    if today.breached:
        assert "realised + unrealised" in today.reason()


# --- track records --------------------------------------------------------------------------------


def test_track_record() -> None:
    r = stats.track_record([10, -5, 20, -10])
    assert (r.trades, r.wins, r.losses, r.win_rate) == (4, 2, 2, 0.5)
    assert (r.avg_win_pct, r.avg_loss_pct, r.reward_risk) == (15, -7.5, 2)
    assert r.total_pnl_pct == pytest.approx((1.1 * 0.95 * 1.2 * 0.9 - 1) * 100)
    assert r.max_drawdown_pct == pytest.approx(10)


@given(st.lists(st.floats(-99, 500), max_size=50))
def test_drawdown_bounds(pnls) -> None:
    dd = stats.max_drawdown_pct(pnls)
    assert 0 <= dd <= 100
    if all(p >= 0 for p in pnls):
        assert dd == 0


def test_stops_go_on_the_tick_grid_away_from_the_price() -> None:
    from quantcore.trading.monitor import stop_on_tick

    assert stop_on_tick("long", 100.037, 0.01) == Decimal("100.03")
    assert stop_on_tick("short", 100.031, 0.01) == Decimal("100.04")
    assert stop_on_tick("long", 100.03, 0.01) == Decimal("100.03")  # already on the grid
    assert stop_on_tick("long", 1.23456789012345, 0) == Decimal("1.2345678901")
