"""Running backtests: one run, a sweep over a grid of settings (parallel processes,
resumable), and walk-forward (fit on window k, score on window k + 1). Pure orchestration of
the engine, the metrics and the strategies; the CLI wires tapes, the database and reports."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantcore.backtest import metrics as mx
from quantcore.backtest.engine import Costs, Result, run
from quantcore.backtest.lookahead import lookahead_violations
from quantcore.strategies import Bars, Strategy, live
from quantcore.strategies.live import parse_value

F = NDArray[np.float64]
LOOKAHEAD_PREFIX = 3_000  # bars of the first coin the plug-in self-check runs on
OBJECTIVES = ("pnl_pct", "sharpe", "sortino", "profit_factor")


class BadInput(ValueError):
    """Input the backtester refuses (exit code 2 in the CLI)."""


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"a setting is NAME=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise BadInput(f"a sweep axis is NAME=V1,V2,..., got {item!r}")
        out[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return out


def make_strategy(name: str, settings: dict[str, Any]) -> Strategy[Any]:
    """The strategy with these settings, or BadInput naming what is wrong (the live runner's
    rule: quantcore.strategies.live.make_strategy)."""
    try:
        return live.make_strategy(name, settings)
    except live.StrategyError as exc:
        raise BadInput(str(exc)) from None


def params_hash(strategy: Strategy[Any]) -> str:
    blob = json.dumps(
        {"s": strategy.name, "v": strategy.version, "p": strategy.params.model_dump()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_inputs(strategy: Strategy[Any], tape: Sequence[Bars]) -> None:
    """The tape has what the strategy reads, and the plug-in does not look ahead on it."""
    if not tape or all(len(b) == 0 for b in tape):
        raise BadInput("the window has no data")
    for need in sorted(strategy.needs):
        missing = [b.symbol for b in tape if getattr(b, need, None) is None]
        if missing:
            raise BadInput(
                f"{strategy.name} needs {need}; the tape has none for {', '.join(missing[:5])}"
            )
    first = tape[0].window(0, min(len(tape[0]), LOOKAHEAD_PREFIX))
    n = len(first)
    if n > 20:
        found = lookahead_violations(strategy, first, [n // 3, 2 * n // 3])
        if found:
            raise BadInput(f"{strategy.name} looks ahead: {found[0]}")


@dataclass(frozen=True)
class RunResult:
    strategy: str
    version: str
    params: dict[str, Any]
    results: list[Result]  # per coin
    metrics: mx.Metrics  # the equal-weight portfolio of the coins
    per_coin: dict[str, mx.Metrics]
    equity: F  # portfolio equity at every bar close
    start_s: NDArray[np.int64]
    interval_s: int


def _metrics_of(results: Sequence[Result], equity: F, position: F, interval_s: int) -> mx.Metrics:
    k = len(results)
    pnl: list[float] = []
    order: list[float] = []
    for r in results:  # each coin holds 1/k of the account: its trades move the account 1/k
        pnl.extend((r.trades.pnl_pct / k).tolist())
        order.extend(r.trades.exit_bar.tolist())
    ranked = [p for _, p in sorted(zip(order, pnl, strict=True), key=lambda x: x[0])]
    return mx.compute(
        ranked, equity, position, interval_s,
        fees=sum(float(r.trades.fees.sum()) for r in results) / k,
        funding=sum(float(r.trades.funding.sum()) for r in results) / k,
    )  # fmt: skip


def run_strategy(
    strategy: Strategy[Any], tape: Sequence[Bars], costs: Costs, trade_from: int = 0
) -> RunResult:
    """Run on every coin of the tape; decisions before bar `trade_from` are dropped (they are
    warm-up: the strategy saw those bars, the account did not trade on them)."""
    results = []
    for bars in tape:
        frame = strategy.signals(bars)
        if trade_from:
            entry = frame.entry.copy()
            entry[:trade_from] = 0
            frame = type(frame)(entry, frame.exit, frame.sl_pct, frame.tp_pct, frame.reason)
        r = run(bars, frame, costs)
        if trade_from:
            r = _cut(r, trade_from)
        results.append(r)
    equity = mx.combine_equity([r.equity for r in results])
    position = np.mean(np.stack([np.abs(r.position[: equity.size]) for r in results]), axis=0)
    per_coin = {
        r.symbol: _metrics_of([r], r.equity, r.position.astype(np.float64), r.interval_s)
        for r in results
    }
    return RunResult(
        strategy=strategy.name, version=strategy.version, params=strategy.params.model_dump(),
        results=results, metrics=_metrics_of(results, equity, position, tape[0].interval_s),
        per_coin=per_coin, equity=equity, start_s=results[0].start_s[: equity.size],
        interval_s=tape[0].interval_s,
    )  # fmt: skip


def _cut(r: Result, a: int) -> Result:
    """The part of a result from bar a on (no trade starts before a: entries were dropped)."""
    from dataclasses import replace

    shift = r.trades.entry_bar - a
    t = r.trades
    trades = replace(t, entry_bar=shift, exit_bar=t.exit_bar - a)
    return replace(
        r, start_s=r.start_s[a:], equity=r.equity[a:], position=r.position[a:], trades=trades
    )


# --- sweeps ------------------------------------------------------------------------------------

_TAPE: list[Bars] = []


def _init_worker(tape: list[Bars]) -> None:
    global _TAPE
    _TAPE = tape


@dataclass(frozen=True)
class Job:
    name: str
    settings: dict[str, Any]
    costs: Costs
    fold: int
    phase: str  # full | fit | test
    a: int  # bars [a, b) of the tape are scored; warm-up bars before a are read
    b: int


def _run_job(job: Job) -> tuple[Job, RunResult]:
    strategy = make_strategy(job.name, job.settings)
    lead = max(0, job.a - strategy.warmup)
    tape = [bars.window(lead, job.b) for bars in _TAPE]
    return job, run_strategy(strategy, tape, job.costs, trade_from=job.a - lead)


def grid_points(
    name: str, base: dict[str, Any], grid: dict[str, list[Any]]
) -> list[dict[str, Any]]:
    """Every combination of the grid over the base settings, each validated up front."""
    keys = list(grid)
    points = [
        {**base, **dict(zip(keys, combo, strict=True))}
        for combo in itertools.product(*(grid[k] for k in keys))
    ]
    for p in points:
        make_strategy(name, p)  # BadInput for a point out of range: before anything runs
    return points


def folds(n: int, k: int) -> list[tuple[int, int, int]]:
    """Walk-forward folds over n bars in k + 1 equal windows: (fit_start, test_start, test_end)."""
    if k < 1:
        raise BadInput("walk-forward needs at least 1 fold")
    w = n // (k + 1)
    if w < 2:
        raise BadInput(f"the tape ({n} bars) is too short for {k} walk-forward folds")
    return [(i * w, (i + 1) * w, (i + 2) * w if i < k - 1 else n) for i in range(k)]


def execute(
    jobs: Sequence[Job], tape: list[Bars], workers: int,
    on_done: Callable[[Job, RunResult], None],
) -> None:  # fmt: skip
    """Run the jobs in `workers` processes (1: in this process); on_done is called in this
    process as each finishes (where the caller stores it: a crash loses only unfinished jobs)."""
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(tape)
        for job in jobs:
            on_done(*_run_job(job))
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(tape,)) as pool:
        futures: list[Future[tuple[Job, RunResult]]] = [pool.submit(_run_job, j) for j in jobs]
        for fut in _as_completed(futures):
            on_done(*fut.result())


def _as_completed(
    futures: list[Future[tuple[Job, RunResult]]],
) -> Iterator[Future[tuple[Job, RunResult]]]:
    from concurrent.futures import as_completed

    yield from as_completed(futures)


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


def score(m: dict[str, Any], objective: str) -> float:
    v = m.get(objective)
    return float(v) if v is not None and np.isfinite(v) else float("-inf")
