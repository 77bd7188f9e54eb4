"""Metrics: properties (hypothesis) and a few hand-checked figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantcore.backtest import metrics as m
from quantcore.trading.stats import max_drawdown_pct as trade_drawdown

pnls = st.lists(st.floats(min_value=-50, max_value=100, allow_nan=False), max_size=60)
curves = st.lists(
    st.floats(min_value=0.01, max_value=100, allow_nan=False), min_size=1, max_size=200
)


@given(pnls)
def test_curve_drawdown_agrees_with_the_leaderboard_rule(p: list[float]) -> None:
    curve = np.cumprod([1.0] + [1 + x / 100 for x in p])
    assert m.max_drawdown_curve_pct(curve) == pytest.approx(trade_drawdown(p), abs=1e-9)


@given(curves)
def test_drawdown_bounds(c: list[float]) -> None:
    dd = m.max_drawdown_curve_pct(c)
    assert 0 <= dd < 100
    assert dd == pytest.approx(float(m.drawdown_curve_pct(c).max()))
    assert m.max_drawdown_curve_pct(sorted(c)) == 0.0  # never falls: no drawdown


@given(pnls)
def test_profit_factor(p: list[float]) -> None:
    pf = m.profit_factor(p)
    wins, losses = sum(x for x in p if x > 0), -sum(x for x in p if x < 0)
    if losses == 0:
        assert pf is None
    else:
        assert pf == pytest.approx(wins / losses)
        assert (pf > 1) == (wins > losses)


@given(
    st.lists(st.floats(min_value=-0.2, max_value=0.2, allow_nan=False), min_size=2, max_size=100)
)
def test_sharpe_sortino_sign_and_scale(r: list[float]) -> None:
    s, so = m.sharpe(r, 365), m.sortino(r, 365)
    mean = float(np.mean(r))
    for x in (s, so):
        if x is not None:
            assert math.copysign(1, x) == math.copysign(1, mean) or abs(x) < 1e-9
    if s is not None:  # annualising is a √ factor
        assert m.sharpe(r, 4 * 365) == pytest.approx(2 * s, rel=1e-9, abs=1e-12)


def test_hand_checked_run() -> None:
    equity = np.array([1.0, 1.1, 0.99, 1.05, 1.05])
    pos = np.array([1, 1, 0, -1, 0])
    out = m.compute([10.0, -10.0, 6.0606], equity, pos, 86_400, fees=0.002, funding=0.001)
    assert out.trades == 3
    assert out.win_rate_pct == pytest.approx(200 / 3)
    assert out.pnl_pct == pytest.approx(5.0)
    assert out.max_drawdown_pct == pytest.approx(10.0)
    assert out.profit_factor == pytest.approx(1.60606)
    assert out.exposure_pct == pytest.approx(60.0)
    assert out.trades_per_day == pytest.approx(3 / 5)
    assert out.fees_pct == pytest.approx(0.2)
    assert out.funding_pct == pytest.approx(0.1)
    assert out.reward_risk == pytest.approx(8.0303 / 10)
    assert out.warning is not None and "fewer than 30" in out.warning
    assert m.compute([1.0] * 30, equity, pos, 86_400).warning is None


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(-0.05, 0.05), min_size=1, max_size=3000),
    max_points=st.integers(1, 700),
)
def test_thinned_equity_keeps_the_trough_and_the_end(steps: list[float], max_points: int) -> None:
    equity = np.cumprod(1 + np.array(steps))
    close_s = 60 + 60 * np.arange(equity.size)
    points = m.equity_points(close_s, equity, max_points)
    assert 1 <= len(points) <= max_points
    times = [t for t, _, _ in points]
    assert times == sorted(times) and times[-1] == close_s[-1]
    assert points[-1][1] == pytest.approx((equity[-1] - 1) * 100)
    whole = m.max_drawdown_curve_pct(np.concatenate([[1.0], equity]))  # as compute() has it
    assert max(dd for _, _, dd in points) == pytest.approx(whole)
