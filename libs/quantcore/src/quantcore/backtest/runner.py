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
from dataclasses import dataclass, replace
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
from numpy.typing import NDArray

from quantcore.backtest import metrics as mx
from quantcore.backtest.engine import Costs, Result, run
from quantcore.backtest.lookahead import lookahead_violations
from quantcore.strategies import Bars, Strategy, live, load_strategy, prefetch
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


def strategy_class(name: str) -> type[Strategy[Any]]:
    """The plug-in registered under `name`, or BadInput naming the known ones."""
    try:
        return load_strategy(name)
    except KeyError as exc:
        raise BadInput(str(exc.args[0])) from None


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
    first = replace(tape[0].window(0, min(len(tape[0]), LOOKAHEAD_PREFIX)), hunts=None)
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
    prefetch(strategy, tape)  # a lazy tape computes the heatmaps read, all coins at once
    for bars in tape:
        # the whale ground truth is for scoring the run; the strategy does not see it
        frame = strategy.signals(bars if bars.hunts is None else replace(bars, hunts=None))
        if trade_from:
            entry = frame.entry.copy()
            entry[:trade_from] = 0
            plans = frame.plans
            if plans is not None:
                plans = tuple(p for p in plans if p.bar >= trade_from)
            frame = replace(frame, entry=entry, plans=plans)
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


def entries_of(r: RunResult) -> list[mx.Entry]:
    """Every trade's entry of a run (coin, side, fill time: the fill bar's open)."""
    return [
        mx.Entry(res.symbol, "long" if side > 0 else "short", int(res.start_s[bar]))
        for res in r.results
        for side, bar in zip(res.trades.side.tolist(), res.trades.entry_bar.tolist(), strict=True)
    ]


def hunt_score_of(r: RunResult, tape: Sequence[Bars]) -> mx.HuntScore | None:
    """The run against the tape's whale ground truth; None when the tape has none."""
    if any(b.hunts is None for b in tape):
        return None
    return mx.hunt_score([h for b in tape for h in b.hunts or ()], entries_of(r))


def _cut(r: Result, a: int) -> Result:
    """The part of a result from bar a on (no trade starts before a: entries were dropped)."""
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


# --- random search ---------------------------------------------------------------------------

LOG_SPAN = 100.0  # a range with high / low at least this (low > 0) is sampled log-uniformly


@dataclass(frozen=True)
class Axis:
    """One setting a random search draws: a numeric range (int or float, both ends inclusive)
    or a list of choices. `log`: drawn log-uniformly (a wide range of positive numbers, so
    5..50 is as likely as 500..5000)."""

    name: str
    kind: str  # int | float | choice
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()
    log: bool = False

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:
            x = float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        else:
            x = float(rng.uniform(self.low, self.high))
        if self.kind == "int":
            return int(min(max(round(x), self.low), self.high))
        x = min(max(x, self.low), self.high)
        short = float(f"{x:.6g}")  # readable, unless rounding leaves the range
        return short if self.low <= short <= self.high else x

    def describe(self) -> str:
        if self.kind == "choice":
            return ",".join(json.dumps(c) for c in self.choices)
        lo, hi = (int(self.low), int(self.high)) if self.kind == "int" else (self.low, self.high)
        return f"{lo}..{hi}{' (log)' if self.log else ''}"


def _alternatives(annotation: Any) -> list[Any]:
    """A setting's types without None: `int | None` → [int], `Literal[...]` → [Literal[...]]."""
    union = get_origin(annotation) in (Union, UnionType)
    return [a for a in (get_args(annotation) if union else (annotation,)) if a is not type(None)]


Bounds = tuple[float | None, float | None, str]  # low, high (inclusive), int|float|bool|choice


def declared_bounds(name: str) -> dict[str, Bounds]:
    """The ranges a strategy's parameter model declares (Field ge/gt/le/lt), per numeric,
    boolean or Literal[...] setting. An open end (gt/lt) of an int becomes the nearest int inside; of a
    float it stays (a draw landing on it is refused by the model and drawn again)."""
    import annotated_types as at

    cls = strategy_class(name)
    out: dict[str, Bounds] = {}
    for key, f in cls.params_model.model_fields.items():
        args = _alternatives(f.annotation)
        if args == [bool]:
            out[key] = (None, None, "bool")
            continue
        if len(args) == 1 and get_origin(args[0]) is Literal:
            out[key] = (None, None, "choice")  # its values: literal_choices()
            continue
        if not args or not all(a in (int, float) for a in args):
            continue
        kind = "int" if args == [int] else "float"
        low = high = None
        for m in f.metadata:
            if isinstance(m, at.Ge):
                low = float(m.ge)  # type: ignore[arg-type]
            elif isinstance(m, at.Gt):
                g = float(m.gt)  # type: ignore[arg-type]
                low = g + 1 if kind == "int" else g  # a float draw is never exactly low
            elif isinstance(m, at.Le):
                high = float(m.le)  # type: ignore[arg-type]
            elif isinstance(m, at.Lt):
                lt = float(m.lt)  # type: ignore[arg-type]
                high = lt - 1 if kind == "int" else lt
        out[key] = (low, high, kind)
    return out


def literal_choices(name: str, key: str) -> list[Any]:
    """The values a Literal[...] setting allows, in declaration order."""
    (literal,) = _alternatives(strategy_class(name).params_model.model_fields[key].annotation)
    return list(get_args(literal))


def parse_space(items: Sequence[str]) -> dict[str, tuple[float, float] | list[Any]]:
    """Random-search axes from the command line: NAME=LOW..HIGH (a range) or NAME=V1,V2,...
    (choices); none named: every ranged setting of the strategy over its declared range."""
    out: dict[str, tuple[float, float] | list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key, values = key.strip(), values.strip()
        if not sep or not key or not values:
            raise BadInput(f"a search axis is NAME=LOW..HIGH or NAME=V1,V2,..., got {item!r}")
        if ".." in values:
            lo, _, hi = values.partition("..")
            try:
                low, high = float(lo), float(hi)
            except ValueError:
                raise BadInput(f"{key}: a range is LOW..HIGH (numbers), got {values!r}") from None
            if not low <= high:
                raise BadInput(f"{key}: the range {values} is empty (LOW must be <= HIGH)")
            out[key] = (low, high)
        else:
            out[key] = [parse_value(v.strip()) for v in values.split(",")]
    return out


def search_axes(name: str, space: dict[str, tuple[float, float] | list[Any]]) -> list[Axis]:
    """The axes a random search draws, checked against the strategy's declared ranges: a
    range reaching outside them is refused (BadInput), not silently clipped."""
    declared = declared_bounds(name)
    if not space:  # every ranged setting over its declared range
        space = {
            k: (lo, hi) for k, (lo, hi, kind) in declared.items()
            if kind != "bool" and lo is not None and hi is not None
        }  # fmt: skip
        space |= {k: [True, False] for k, (_, _, kind) in declared.items() if kind == "bool"}
        space |= {
            k: literal_choices(name, k) for k, (_, _, kind) in declared.items() if kind == "choice"
        }
        if not space:
            raise BadInput(f"{name} declares no ranged setting to search; name axes with --sweep")
    fields = strategy_class(name).params_model.model_fields
    axes = []
    for key in sorted(space):
        spec = space[key]
        if key not in fields:
            raise BadInput(f"{name}: no setting {key!r} (settings: {', '.join(fields)})")
        if isinstance(spec, list):
            lo, hi, _ = declared.get(key, (None, None, ""))
            for v in spec:
                num = isinstance(v, int | float) and not isinstance(v, bool)
                if num and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                    raise BadInput(f"{name}: {key}={v} is outside its declared range")
            axes.append(Axis(key, "choice", choices=tuple(spec)))
            continue
        if key not in declared or declared[key][2] in ("bool", "choice"):
            raise BadInput(f"{name}: {key!r} is not a numeric setting (a range needs one)")
        d_lo, d_hi, kind = declared[key]
        low, high = spec
        if kind == "int":
            low, high = float(np.ceil(low)), float(np.floor(high))
            if low > high:
                raise BadInput(f"{name}: {key} {spec[0]:g}..{spec[1]:g} holds no whole number")
        if (d_lo is not None and low < d_lo) or (d_hi is not None and high > d_hi):
            raise BadInput(
                f"{name}: {key} {spec[0]:g}..{spec[1]:g} is outside its declared range "
                f"{'-inf' if d_lo is None else f'{d_lo:g}'}..{'inf' if d_hi is None else f'{d_hi:g}'}"
            )
        log = low > 0 and high / low >= LOG_SPAN
        axes.append(Axis(key, kind, low, high, log=log))
    return axes


def random_points(
    name: str, base: dict[str, Any], axes: Sequence[Axis], samples: int, seed: int
) -> list[dict[str, Any]]:
    """`samples` distinct valid settings drawn from the axes over the base settings, the same
    for the same seed; drawn one after another, so the first n of a larger search are the n
    of a smaller one (a grown search resumes). A draw the strategy refuses (e.g. fast >= slow)
    is drawn again; a space with fewer distinct points than asked gives what it holds."""
    if samples < 1:
        raise BadInput("--samples must be at least 1")
    rng = np.random.default_rng(seed)
    points: list[dict[str, Any]] = []
    seen: set[str] = set()
    refused = 0
    for _ in range(max(1_000, 50 * samples)):
        if len(points) == samples:
            break
        p = {**base, **{a.name: a.draw(rng) for a in axes}}
        try:
            h = params_hash(make_strategy(name, p))
        except BadInput:
            refused += 1
            continue
        if h not in seen:
            seen.add(h)
            points.append(p)
    if not points:
        raise BadInput(
            f"{name}: no valid setting in {refused} draws from "
            + ", ".join(f"{a.name}={a.describe()}" for a in axes)
        )
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
