"""The engine's plan path (leverage, liquidation, limit entries, trailing ladder, fees and
funding) on hand-made bars, each number worked out by hand, and the shared liquidation rule
shown to be the one both the paper venue and the engine use."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest

from quantcore.backtest.engine import Costs, run, run_plans
from quantcore.math import matching
from quantcore.model.trading import Side
from quantcore.strategies import Bars, OrderPlan, SignalFrame
from quantcore.venues import paper

NO_FEES = Costs(commission=0.0, maker=0.0)


def bars_of(
    path: list[tuple[float, float, float, float]], funding: dict[int, float] | None = None
) -> Bars:
    a = np.array(path, dtype=np.float64)
    n = a.shape[0]
    f = None
    if funding:
        f = np.zeros(n)
        for i, r in funding.items():
            f[i] = r
    return Bars(
        symbol="TESTUSDT", start_s=np.arange(n, dtype=np.int64) * 60, open=a[:, 0],
        high=a[:, 1], low=a[:, 2], close=a[:, 3], volume=np.ones(n), funding=f,
    )  # fmt: skip


def plan(side: int = 1, prices: tuple[float, ...] = (100.0,), qty: tuple[float, ...] = (0.05,),
         sl: float = 90.0, tp: float = 120.0, lev: float = 5.0, bar: int = 0,
         trailing: tuple[tuple[float, float], ...] = (), expire_s: float = 3600.0) -> OrderPlan:  # fmt: skip
    return OrderPlan(
        bar=bar, side=side, prices=np.array(prices), qty_per_equity=np.array(qty), stop_loss=sl,
        take_profit=tp, leverage=lev, expire_s=expire_s, trailing=trailing,
    )  # fmt: skip


FLAT = (100.0, 100.5, 99.5, 100.0)


def test_a_10x_long_is_liquidated_at_the_shared_liquidation_price() -> None:
    # entry 100 at 10x: liquidation at 100 × (1 − (1/10 − 0.005)) = 90.5, above the 85 stop
    b = bars_of([FLAT, FLAT, (99.0, 99.5, 88.0, 89.0), FLAT])
    r = run_plans(b, [plan(sl=85.0, lev=10.0, qty=(0.1,))], NO_FEES)
    assert r.trades.reason == ["liquidation"]
    assert r.trades.exit_price[0] == pytest.approx(90.5)
    assert r.trades.exit_bar[0] == 2
    # 0.1 units per unit of equity lose 9.5 each: −0.95 of the equity
    assert r.trades.pnl_pct[0] == pytest.approx(-95.0)
    assert r.equity[-1] == pytest.approx(0.05)


def test_the_stop_fires_first_when_it_is_nearer_than_the_liquidation() -> None:
    b = bars_of([FLAT, FLAT, (99.0, 99.5, 88.0, 89.0), FLAT])
    r = run_plans(b, [plan(sl=95.0, lev=10.0, qty=(0.1,))], NO_FEES)
    assert r.trades.reason == ["stop_loss"] and r.trades.exit_price[0] == pytest.approx(95.0)


def test_patching_the_shared_liquidation_rule_changes_the_paper_venue_and_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    b = bars_of([FLAT, FLAT, (99.0, 99.5, 96.0, 97.0), FLAT])
    before = run_plans(b, [plan(sl=95.0)], NO_FEES)
    pos = SimpleNamespace(side=Side.BUY, avg_price=Decimal(100), leverage=Decimal(5))
    assert paper._liq_price(pos) == Decimal("80.5")
    monkeypatch.setattr(
        matching, "liquidation_price",
        lambda side, avg, lev, mm=matching.MAINTENANCE_MARGIN: avg * (
            Decimal("0.97") if side is Side.BUY else Decimal("1.03")),
    )  # fmt: skip
    assert paper._liq_price(pos) == Decimal("97.00")
    after = run_plans(b, [plan(sl=95.0)], NO_FEES)
    assert before.trades.reason == ["end"]
    assert after.trades.reason == ["liquidation"] and after.trades.exit_price[0] == 97.0


def test_limit_entries_fill_as_makers_when_traded_through_and_marketable_ones_as_takers() -> None:
    costs = Costs(commission=0.001, maker=0.0002)
    # a long ladder at 101 (above the 100 open: marketable) and 98 (reached in bar 3)
    b = bars_of([FLAT, FLAT, FLAT, (99.0, 99.5, 97.5, 99.0), FLAT, (100.0, 106.0, 100.0, 105.0)])
    r = run_plans(b, [plan(prices=(101.0, 98.0), qty=(0.05, 0.05), tp=105.0)], costs)
    t = r.trades
    # taker at the open 100, maker at 98: average 99; target 105 in the last bar
    assert t.reason == ["take_profit"] and t.entry_price[0] == pytest.approx(99.0)
    assert t.units[0] == pytest.approx(0.1) and t.entry_bar[0] == 1
    fees = 0.05 * 100 * 0.001 + 0.05 * 98 * 0.0002 + 0.1 * 105 * 0.001
    assert t.fees[0] == pytest.approx(fees)
    assert t.pnl_pct[0] == pytest.approx((0.1 * (105 - 99) - fees) * 100)


def test_an_unfilled_plan_expires_and_trades_nothing() -> None:
    b = bars_of([FLAT] * 6)
    r = run_plans(b, [plan(prices=(95.0,), expire_s=120.0)], NO_FEES)
    assert len(r.trades) == 0 and np.all(r.equity == 1.0)


def test_the_trailing_ladder_moves_the_stop_to_breakeven_then_it_closes_there() -> None:
    # 5x on margin: +10 % margin = +2 % price → stop to the entry (100) from the next bar
    b = bars_of([FLAT, FLAT, (100.0, 102.5, 100.0, 102.0), (102.0, 102.0, 99.0, 99.5), FLAT])
    r = run_plans(b, [plan(sl=90.0, trailing=((10.0, 0.0), (20.0, 10.0)))], NO_FEES)
    assert r.trades.reason == ["trailing_stop"]
    assert r.trades.exit_price[0] == pytest.approx(100.0) and r.trades.exit_bar[0] == 3
    assert r.trades.sl[0] == pytest.approx(100.0)


def test_funding_is_charged_at_settlements_while_open() -> None:
    b = bars_of([FLAT, FLAT, FLAT, FLAT, FLAT], funding={2: 0.001})
    r = run_plans(b, [plan(qty=(0.1,))], NO_FEES)
    # a long pays 0.1 × 100 × 0.001 at the close of bar 2
    assert r.trades.funding[0] == pytest.approx(0.01)
    assert r.trades.reason == ["end"]


def test_shorts_mirror_and_a_plan_frame_runs_through_run() -> None:
    b = bars_of([FLAT, FLAT, (100.0, 111.0, 99.5, 110.0), FLAT])
    frame = SignalFrame(entry=np.array([-1, 0, 0, 0], dtype=np.int8),
                        plans=(plan(side=-1, sl=115.0, tp=80.0, lev=10.0, qty=(0.1,)),))  # fmt: skip
    r = run(b, frame, NO_FEES)
    # a 10x short: liquidation at 100 × (1 + 0.095) = 109.5, below the 115 stop
    assert r.trades.reason == ["liquidation"] and r.trades.exit_price[0] == pytest.approx(109.5)
    assert r.trades.side[0] == -1
