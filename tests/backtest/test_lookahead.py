"""No lookahead, shown: plant a different future just after t (price jump, OI spike, volume
burst); no decision at or before t may change, nor the equity or any trade closed by t. A
strategy that peeks one bar ahead is caught by the same check."""

from __future__ import annotations

import numpy as np
import pytest

from quantcore.backtest.engine import Costs, run
from quantcore.backtest.lookahead import PLANTS, lookahead_violations, plant_future
from quantcore.math.indicators import crossover, sma
from quantcore.strategies import Bars, SignalFrame, SmaCross, Strategy
from quantcore.strategies.scanner_oi import ScannerOi, ScannerOiParams
from quantcore.strategies.sma_cross import SmaCrossParams

TIMES = [100, 400, 777, 1200]


class PeekingSmaCross(SmaCross):
    """The SMA cross computed on the *next* bar's close: a one-bar peek."""

    def signals(self, bars: Bars) -> SignalFrame:
        nxt = np.append(bars.close[1:], bars.close[-1])
        fast, slow = sma(nxt, self.params.fast), sma(nxt, self.params.slow)
        entry = crossover(fast, slow).astype(np.int8) - crossover(slow, fast).astype(np.int8)
        return SignalFrame(entry=entry)


def _strategies() -> list[Strategy]:  # type: ignore[type-arg]
    return [
        SmaCross(SmaCrossParams(fast=5, slow=20, sl_pct=0.3, tp_pct=0.6)),
        # low bars so the scanner fires on a quiet simulated day
        ScannerOi(ScannerOiParams(oi_min_pct=0.05, vol_min=1.0, move_min_pct=0.05)),
    ]


@pytest.mark.parametrize("strategy", _strategies(), ids=lambda s: s.name)
def test_no_decision_at_or_before_t_changes(strategy: Strategy, day_tape: Bars) -> None:  # type: ignore[type-arg]
    assert (strategy.signals(day_tape).entry != 0).sum() > 10  # it does decide things
    assert lookahead_violations(strategy, day_tape, TIMES) == []


@pytest.mark.parametrize("strategy", _strategies(), ids=lambda s: s.name)
def test_engine_equity_and_closed_trades_up_to_t_unchanged(
    strategy: Strategy, day_tape: Bars
) -> None:  # type: ignore[type-arg]
    base = run(day_tape, strategy.signals(day_tape), Costs())
    assert len(base.trades) > 5
    for t in TIMES:
        for _, px, fx in PLANTS:
            planted = plant_future(day_tape, t, px, fx)
            other = run(planted, strategy.signals(planted), Costs())
            np.testing.assert_array_equal(base.equity[: t + 1], other.equity[: t + 1])
            np.testing.assert_array_equal(base.position[: t + 1], other.position[: t + 1])
            done_a = base.trades.exit_bar <= t
            done_b = other.trades.exit_bar <= t
            for col in ("entry_bar", "exit_bar", "side", "entry_price", "exit_price", "pnl_pct"):
                np.testing.assert_array_equal(
                    getattr(base.trades, col)[done_a], getattr(other.trades, col)[done_b]
                )
            # and the planted future does change what comes after t (the plant is real)
            assert not np.array_equal(base.equity[t + 1 :], other.equity[t + 1 :])


def test_a_one_bar_peek_is_caught(day_tape: Bars) -> None:
    peeker = PeekingSmaCross(SmaCrossParams(fast=5, slow=20))
    found = lookahead_violations(peeker, day_tape, TIMES)
    assert found, "the check must catch a strategy that reads the next bar"
    assert "entry changed at bar" in found[0]
