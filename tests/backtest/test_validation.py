"""Our engine vs an established library (backtesting.py) on the same simulated tape and the
same rules: SMA cross, next-bar execution, commission on entry and exit, one position at a
time, always in the market. Same trades, same final return (within rounding: the library
trades whole units, so the account is made large enough for that to vanish)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest
from backtesting import Strategy as LibStrategy
from backtesting.lib import crossover as lib_crossover

from quantcore.backtest.engine import Costs, run
from quantcore.backtest.tapes import sim_tape
from quantcore.strategies import Bars, SmaCross
from quantcore.strategies.sma_cross import SmaCrossParams

CASH = 1e12  # whole units of a ~100k coin: 1e7 units, rounding below 1e-7


def _frame(b: Bars) -> pd.DataFrame:
    """The tape as the library wants it, plus one flat bar at the last close: the library
    closes what is still open at the end at the *open* of its last bar, our engine at the
    last bar's *close*; that extra bar makes the two the same price."""
    last = b.close[-1]
    return pd.DataFrame(
        {
            "Open": np.append(b.open, last), "High": np.append(b.high, last),
            "Low": np.append(b.low, last), "Close": np.append(b.close, last),
            "Volume": np.append(b.volume, 0.0),
        },
        index=pd.to_datetime(np.append(b.start_s, b.start_s[-1] + b.interval_s), unit="s"),
    )  # fmt: skip


def _lib_sma(values: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


def _library_run(df: pd.DataFrame, fast: int, slow: int, commission: float) -> object:
    class LibSmaCross(LibStrategy):  # the library's own tutorial strategy
        def init(self) -> None:
            self.fast = self.I(_lib_sma, self.data.Close, fast)
            self.slow = self.I(_lib_sma, self.data.Close, slow)

        def next(self) -> None:
            if lib_crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif lib_crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, LibSmaCross, cash=CASH, commission=commission, finalize_trades=True)
        return bt.run()


@pytest.mark.parametrize(
    ("seed", "fast", "slow", "commission"),
    [(1, 10, 30, 0.00055), (7, 5, 60, 0.001), (3, 20, 50, 0.0)],
)
def test_same_trades_and_return_as_backtesting_py(
    seed: int, fast: int, slow: int, commission: float
) -> None:
    # the library has no funding: the same rules means none on our side either
    bars = replace(sim_tape(2, seed=seed, coins=1)[0], funding=None)
    ours = run(
        bars,
        SmaCross(SmaCrossParams(fast=fast, slow=slow)).signals(bars),
        Costs(commission=commission),
    )
    stats = _library_run(_frame(bars), fast, slow, commission)
    lib = stats["_trades"]  # type: ignore[index]
    assert len(ours.trades) > 20
    assert len(lib) == len(ours.trades)
    np.testing.assert_array_equal(lib["EntryBar"].to_numpy(), ours.trades.entry_bar)
    lib_exit = np.minimum(lib["ExitBar"].to_numpy(), len(bars) - 1)  # the extra bar is our last
    np.testing.assert_array_equal(lib_exit, ours.trades.exit_bar)
    np.testing.assert_array_equal(np.sign(lib["Size"].to_numpy()), ours.trades.side)
    np.testing.assert_allclose(lib["EntryPrice"].to_numpy(), ours.trades.entry_price, rtol=1e-12)
    np.testing.assert_allclose(lib["ExitPrice"].to_numpy(), ours.trades.exit_price, rtol=1e-12)
    lib_return = stats["Return [%]"]  # type: ignore[index]
    assert ours.final_return_pct == pytest.approx(lib_return, abs=1e-4)
    lib_equity = stats["_equity_curve"]["Equity"].to_numpy() / CASH  # type: ignore[index]
    # bar by bar (marked to market at each close); our last close includes the final exit
    np.testing.assert_allclose(ours.equity[:-1], lib_equity[:-2], rtol=1e-6)
    assert ours.equity[-1] == pytest.approx(lib_equity[-1], rel=1e-6)
