"""backtest.plain_candles_per_s: the SMA-cross plug-in (10/30) through our engine over
1,036,800 one-minute candles (720 days of one coin), signals + engine, best of 3; baseline:
the same strategy (the library's own tutorial SMA cross, same rules: next-bar open fills,
commission 0.055 % per side, one position, always in the market) in backtesting.py, the
validation library, on the first LIB_BARS candles of the same data (its per-bar loop makes
its rate flat in the length; a whole million would not fit the group's minute), as candles/s.
Both runs' trades are checked equal on that prefix, so they do the same work.

Data: a seeded random walk (Student-t(4) 1-minute returns, 0.1 % scale) with open = previous
close and high/low spread around the bar: generated in memory, untimed. The simulator's
market is too slow to generate a million candles inside the group's budget; the engine's cost
does not depend on where prices come from, only on their number and the number of trades."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from quantcore.backtest.engine import Costs, run
from quantcore.strategies import Bars, SmaCross
from quantcore.strategies.sma_cross import SmaCrossParams
from quantcore.testing import Sandbox
from scripts.benchmarks.report import Group, Metric, load_note

CANDLES = 720 * 1440
LIB_BARS = 50_000
FAST, SLOW = 10, 30
COMMISSION = 0.00055


def candles(n: int, seed: int = 13) -> Bars:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, n) * 0.001
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.standard_normal(n)) * 0.0005
    return Bars(
        symbol="BENCHUSDT", start_s=np.arange(n, dtype=np.int64) * 60, open=open_,
        high=np.maximum(open_, close) * (1 + wick), low=np.minimum(open_, close) * (1 - wick),
        close=close, volume=rng.lognormal(3, 1, n),
    )  # fmt: skip


def ours(b: Bars) -> tuple[float, Any]:
    strategy = SmaCross(SmaCrossParams(fast=FAST, slow=SLOW))
    t0 = time.perf_counter()
    r = run(b, strategy.signals(b), Costs(commission=COMMISSION))
    return time.perf_counter() - t0, r


def library(b: Bars) -> tuple[float, Any]:
    import pandas as pd
    from backtesting import Backtest
    from backtesting import Strategy as LibStrategy
    from backtesting.lib import crossover

    def sma(values: np.ndarray, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class LibSmaCross(LibStrategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    df = pd.DataFrame(
        {"Open": b.open, "High": b.high, "Low": b.low, "Close": b.close, "Volume": b.volume},
        index=pd.to_datetime(b.start_s, unit="s"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, LibSmaCross, cash=1e12, commission=COMMISSION, finalize_trades=True)
        t0 = time.perf_counter()
        stats = bt.run()
        return time.perf_counter() - t0, stats


async def run_group(box: Sandbox) -> dict[str, Metric]:
    data = candles(CANDLES)
    times = []
    result = None
    for _ in range(3):
        dt, result = ours(data)
        times.append(dt)
    best = min(times)
    assert result is not None
    prefix = data.window(0, LIB_BARS)
    lib_s, stats = library(prefix)
    _, mine = ours(prefix)
    lib_trades = stats["_trades"]
    same = len(lib_trades) == len(mine.trades) and np.array_equal(
        lib_trades["EntryBar"].to_numpy(), mine.trades.entry_bar
    )
    if not same:
        raise AssertionError("the library and our engine disagree on the prefix's trades")
    value = CANDLES / best
    baseline = LIB_BARS / lib_s
    note = (
        f"SMA cross {FAST}/{SLOW}, {CANDLES:,} candles, {len(result.trades):,} trades; ours best "
        f"of 3: {best:.3f} s ({', '.join(f'{t:.3f}' for t in times)}); backtesting.py "
        f"{LIB_BARS:,} candles in {lib_s:.1f} s, same {len(mine.trades)} trades; goal ≥ 1,000,000 "
        f"candles/s: {'met' if value >= 1e6 else 'not met'}; {load_note()}"
    )
    return {
        "backtest.plain_candles_per_s": Metric.measured(
            value, "candles/s", baseline, "higher", note
        )
    }


GROUP = Group("backtest", ("backtest.plain_candles_per_s",), run_group)
