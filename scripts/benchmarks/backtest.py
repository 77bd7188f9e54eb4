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

import os
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


# --- backtest.liquidation_year_60_s ----------------------------------------------------------------
#
# The liquidation hunter (default settings = the live ones) over one simulated year of 60 coins:
# 1-min candles, heatmaps (9 timeframes, what the collector stores with HEATMAP_SOURCE=sim)
# every 5 minutes. Timed end to end: the seeded market generated minute by minute with the
# heatmaps the hunter names read off copies of the book at each refresh (one pass, no replay),
# then per coin the plug-in's signals and the engine (leverage, liquidation, trailing, fees,
# funding), the coins split over 2 processes (fork: the tape is shared, not copied). No
# baseline: nothing else runs this strategy.

LIQ_DAYS, LIQ_COINS, LIQ_SEED = 365, 60, 42
_LIQ_TAPE: list[Bars] = []


def _liq_coin(c: int) -> tuple[int, int, int, float, dict[str, int]]:
    from quantcore.strategies.liquidation_hunter import LiquidationHunter

    bars = _LIQ_TAPE[c]
    hunter = LiquidationHunter.from_settings({})
    frame = hunter.signals(bars)
    r = run(bars, frame, Costs())
    reasons: dict[str, int] = {}
    for x in r.trades.reason:
        reasons[x] = reasons.get(x, 0) + 1
    return c, len(frame.plans or ()), len(r.trades), r.final_return_pct, reasons


def liquidation_year(days: float = LIQ_DAYS, coins: int = LIQ_COINS) -> tuple[float, str]:
    """(seconds, note) of the whole run."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from quantcore.backtest.tapes import sim_tape
    from quantcore.strategies.liquidation_hunter import LiquidationHunter

    global _LIQ_TAPE
    hunter = LiquidationHunter.from_settings({})
    cpu0 = os.times()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    _LIQ_TAPE = sim_tape(days, seed=LIQ_SEED, coins=coins, capture=hunter)
    t_tape = time.perf_counter() - t0
    src = _LIQ_TAPE[0].heatmap.source if _LIQ_TAPE[0].heatmap else None
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        out = list(pool.map(_liq_coin, range(coins)))
    total = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = sum(cpu1[k] - cpu0[k] for k in range(4))  # user + system, this process and the pool
    bars = sum(len(b) for b in _LIQ_TAPE)
    refreshes = len(_LIQ_TAPE[0].heatmap.refreshed_s) if _LIQ_TAPE[0].heatmap else 0
    read = len(getattr(src, "_got", {}))
    replays = getattr(src, "replays", 0)
    _LIQ_TAPE = []
    plans = sum(o[1] for o in out)
    trades = sum(o[2] for o in out)
    reasons: dict[str, int] = {}
    for o in out:
        for k, v in o[4].items():
            reasons[k] = reasons.get(k, 0) + v
    mean_ret = sum(o[3] for o in out) / coins
    note = (
        f"liquidation_hunter v1 (live defaults), {days:g} simulated days × {coins} coins, seed "
        f"{LIQ_SEED}: {bars:,} 1-min candles, {refreshes:,} heatmap refreshes per coin (9 "
        f"timeframes, every 5 min), {read:,} coin-refreshes read by the hunter (captured while "
        f"generating, {replays} replay(s)); tape + heatmaps {t_tape:.1f} s, signals + engine "
        f"{total - t_tape:.1f} s on 2 processes; {plans:,} plans, {trades:,} trades "
        f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))}), mean coin return "
        f"{mean_ret:+.1f} %; CPU time {cpu:.0f} s (user + system, all processes); goal < 300 s: "
        f"{'met' if total < 300 else 'not met'}; load avg 1/5/15-min at the start "
        f"{'/'.join(f'{x:.1f}' for x in load0)}, at the end "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cpus"
    )
    return total, note


async def run_liquidation_group(box: Sandbox) -> dict[str, Metric]:
    seconds, note = liquidation_year()
    return {"backtest.liquidation_year_60_s": Metric.measured(seconds, "s", None, "lower", note)}


LIQ_GROUP = Group(
    "backtest_liquidation", ("backtest.liquidation_year_60_s",), run_liquidation_group
)
