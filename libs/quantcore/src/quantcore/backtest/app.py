"""`quant backtest`: tapes → runs / sweeps / walk-forward → `backtest_runs` + HTML report.

Everything that can be refused is checked before anything is written: the strategy name,
every setting (each grid point), the tape (gaps, empty window, missing inputs) and the
plug-in's causality. Refusals are `BadInput` / `TapeError` (exit code 2). A run is written in
one transaction; a sweep point in its own, so an interrupted sweep resumes where it stopped."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from quantcore.backtest import metrics as mx
from quantcore.backtest.engine import Costs
from quantcore.backtest.report import hunt_line, text_table, write_report
from quantcore.backtest.runner import (
    OBJECTIVES,
    BadInput,
    Job,
    RunResult,
    check_inputs,
    execute,
    folds,
    grid_points,
    hunt_score_of,
    make_strategy,
    params_hash,
    random_points,
    run_strategy,
    score,
    search_axes,
)
from quantcore.backtest.tapes import (
    RawCandles,
    StoredHeatmaps,
    TapeError,
    check_and_shape,
    sim_tape,
)
from quantcore.strategies import Bars, Strategy

DAY_S = 86_400


@dataclass(frozen=True)
class Options:
    strategy: str
    tape: str = "sim"
    days: float = 30.0
    settings: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    search: str = "grid"  # grid | random
    space: dict[str, tuple[float, float] | list[Any]] = field(default_factory=dict)  # random
    samples: int = 0  # random search: points drawn
    search_seed: int | None = None  # random search: default the tape's --seed
    walk_forward: int = 0  # folds; 0 = off
    objective: str = "sharpe"
    symbols: list[str] | None = None
    coins: int = 3  # sim tape
    seed: int = 42  # sim tape
    end: datetime | None = None  # database tapes: window end (default now)
    max_gap: int = 0
    costs: Costs = field(default_factory=Costs)
    workers: int = 1
    report_dir: Path | None = None
    write_db: bool = True

    @property
    def tape_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": self.tape, "days": self.days, "max_gap": self.max_gap}
        if self.tape == "sim":
            spec |= {"seed": self.seed, "coins": self.coins}
        else:
            spec |= {"end": self.end.isoformat() if self.end else None}
        if self.symbols:
            spec["symbols"] = self.symbols
        return spec


def validate(opts: Options) -> None:
    if opts.tape not in ("sim", "db", "bybit"):
        raise BadInput(f"unknown tape {opts.tape!r} (sim, db, bybit)")
    if not 0 < opts.days <= 3660:
        raise BadInput(f"--days must be in (0, 3660], got {opts.days}")
    if opts.objective not in OBJECTIVES:
        raise BadInput(f"--objective must be one of {', '.join(OBJECTIVES)}")
    if opts.tape == "sim" and not 1 <= opts.coins <= 500:
        raise BadInput("--coins must be in [1, 500]")
    make_strategy(opts.strategy, opts.settings)
    if opts.search not in ("grid", "random"):
        raise BadInput(f"--search must be grid or random, got {opts.search!r}")
    if opts.search == "random" and opts.samples < 1:
        raise BadInput("--search random needs --samples N (N >= 1)")
    if opts.search == "grid" and (opts.samples or opts.search_seed is not None):
        raise BadInput("--samples and --search-seed go with --search random")
    if opts.grid or opts.search == "random":
        sweep_points(opts)


def sweep_points(opts: Options) -> list[dict[str, Any]]:
    """The settings a sweep (or a walk-forward fit) tries: the grid's every combination, or
    a seeded random draw from the strategy's declared ranges (narrowed by --sweep axes)."""
    if opts.search == "random":
        seed = opts.seed if opts.search_seed is None else opts.search_seed
        axes = search_axes(opts.strategy, opts.space)
        return random_points(opts.strategy, opts.settings, axes, opts.samples, seed)
    return grid_points(opts.strategy, opts.settings, opts.grid)


def _search_key(opts: Options) -> dict[str, Any]:
    """What makes a random search's points (not their number: a grown search resumes)."""
    if opts.search != "random":
        return {}
    return {
        "search": "random",
        "search_seed": opts.seed if opts.search_seed is None else opts.search_seed,
        "space": [f"{a.name}={a.describe()}" for a in search_axes(opts.strategy, opts.space)],
    }


async def load_tape(
    opts: Options, conninfo: str | None, strategy: Strategy[Any] | None = None
) -> list[Bars]:
    if opts.tape == "sim":
        # the heatmaps the strategy reads are captured while the market is generated
        tape = sim_tape(opts.days, seed=opts.seed, coins=opts.coins, capture=strategy)
        if opts.symbols:
            keep = [b for b in tape if b.symbol in opts.symbols]
            missing = set(opts.symbols) - {b.symbol for b in keep}
            if missing:
                raise TapeError(f"not in the simulated market: {', '.join(sorted(missing))}")
            tape = keep
        return tape
    if conninfo is None:
        raise BadInput("the database tapes need the database")
    from psycopg import AsyncConnection

    from quantcore.store.backtests import load_candles, tape_symbols

    end = (opts.end or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = end - timedelta(days=opts.days)
    source = "bybit" if opts.tape == "bybit" else None
    async with await AsyncConnection.connect(conninfo) as conn:
        symbols = opts.symbols or await tape_symbols(conn, start, end, source)
        if not symbols:
            raise TapeError(
                f"no 1-min candles{' from bybit' if source else ''} between {start:%Y-%m-%d %H:%M}"
                f" and {end:%Y-%m-%d %H:%M} UTC"
                + (" (run quant backfill with DATA_SOURCE=bybit)" if source else "")
            )
        tape = []
        for sym in symbols:
            rows = await load_candles(conn, sym, start, end, source)
            tape.append(
                check_and_shape(
                    RawCandles(
                        sym, rows.start_s, rows.ohlcv, rows.oi_time_s, rows.oi,
                        rows.funding_time_s, rows.funding,
                    ),
                    max_gap_bars=opts.max_gap,
                )
            )  # fmt: skip
        if strategy is not None and "heatmap" in strategy.needs:
            # the refreshes the liquidation collector stored, as of each: the live runner's
            # reader; a sweep's or a walk-forward's settings may read other refreshes: all
            every = bool(opts.grid) or opts.search == "random" or opts.walk_forward > 0
            tape = await StoredHeatmaps().load(
                conn, strategy, tape, int(end.timestamp()), every=every
            )
    first = {int(b.start_s[0]) for b in tape}
    last = {int(b.start_s[-1]) for b in tape}
    if len(first) > 1 or len(last) > 1:
        spans = ", ".join(
            f"{b.symbol} {np.datetime64(int(b.start_s[0]), 's')}…{np.datetime64(int(b.start_s[-1]), 's')}"
            for b in tape[:6]
        )
        raise TapeError(f"the coins do not cover the same window ({spans}); pick --symbols that do")
    if opts.max_gap:  # fill tolerated gaps: carry the last close, no volume (no trade there)
        tape = [_fill_gaps(b) for b in tape]
    return tape


def _fill_gaps(b: Bars) -> Bars:
    grid = np.arange(b.start_s[0], b.start_s[-1] + 1, b.interval_s, dtype=np.int64)
    if grid.size == b.start_s.size:
        return b
    pos = np.searchsorted(b.start_s, grid, side="right") - 1
    have = b.start_s[pos] == grid
    c = b.close[pos]

    def pick(x: np.ndarray) -> np.ndarray:
        return np.where(have, x[pos], c)

    return Bars(
        symbol=b.symbol, start_s=grid, open=pick(b.open), high=pick(b.high), low=pick(b.low),
        close=c, volume=np.where(have, b.volume[pos], 0.0), interval_s=b.interval_s,
        open_interest=None if b.open_interest is None else b.open_interest[pos],
        funding=None if b.funding is None else np.where(have, b.funding[pos], 0.0),
        heatmap=b.heatmap, tick_size=b.tick_size,
    )  # fmt: skip


def _window(tape: list[Bars]) -> tuple[datetime, datetime]:
    b = tape[0]
    return (
        datetime.fromtimestamp(int(b.start_s[0]), UTC),
        datetime.fromtimestamp(int(b.close_s[-1]), UTC),
    )


def _trade_rows(run_id: str, r: RunResult) -> list[Any]:
    rows: list[Any] = []
    for res in r.results:
        t = res.trades
        times = res.start_s
        for i in range(len(t)):
            eb, xb = int(t.entry_bar[i]), int(t.exit_bar[i])
            exit_s = int(times[xb]) + (res.interval_s if t.reason[i] == "end" else 0)
            rows.append((
                run_id, len(rows), res.symbol, "long" if t.side[i] > 0 else "short",
                datetime.fromtimestamp(int(times[eb]), UTC), datetime.fromtimestamp(exit_s, UTC),
                float(t.entry_price[i]), float(t.exit_price[i]),
                None if np.isnan(t.sl[i]) else float(t.sl[i]),
                None if np.isnan(t.tp[i]) else float(t.tp[i]), t.reason[i],
                float(t.pnl_pct[i]), float(t.return_pct[i]),
                float(t.fees[i] / t.equity_before[i] * 100),
                float(t.funding[i] / t.equity_before[i] * 100),
            ))  # fmt: skip
    return rows


def _equity_rows(run_id: str, r: RunResult, start: datetime) -> list[Any]:
    """The run's equity curve, thinned (metrics.equity_points), as backtest_equity rows."""
    points = mx.equity_points(r.start_s + r.interval_s, r.equity)
    t0 = start.timestamp()
    return [
        (run_id, i, datetime.fromtimestamp(t, UTC), (t - t0) / DAY_S, eq, dd)
        for i, (t, eq, dd) in enumerate(points)
    ]


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Metrics for the database: no NaN / inf (NULL instead)."""
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


class Store:
    """Where runs go: the database (one transaction per run) or nowhere (--no-db)."""

    def __init__(self, conninfo: str | None) -> None:
        self.conninfo = conninfo

    async def write(
        self, opts: Options, r: RunResult, tape: list[Bars], *, sweep_id: str | None = None,
        fold: int = 0, phase: str = "full", report: Path | None = None,
        window: tuple[datetime, datetime] | None = None, phash: str | None = None,
    ) -> str:  # fmt: skip
        run_id = uuid.uuid4().hex
        if self.conninfo is None:
            return run_id
        from psycopg import AsyncConnection

        from quantcore.store.backtests import RunRow, write_run

        start, end = window or _window(tape)
        phash = phash or params_hash(make_strategy(r.strategy, r.params))
        row = RunRow(
            run_id=run_id, strategy=r.strategy, version=r.version, params=r.params,
            params_hash=phash, tape=opts.tape, tape_spec=opts.tape_spec,
            symbols=[b.symbol for b in tape], window_start=start, window_end=end,
            sweep_id=sweep_id, fold=fold, phase=phase, commission=opts.costs.commission,
            slippage=opts.costs.slippage, size=opts.costs.size,
            metrics=_clean(r.metrics.as_dict()), report_path=str(report) if report else None,
        )  # fmt: skip
        async with await AsyncConnection.connect(self.conninfo) as conn:
            await write_run(conn, row, _trade_rows(run_id, r), _equity_rows(run_id, r, start))
        return run_id

    async def done(self, sweep_id: str) -> dict[tuple[str, int, str], dict[str, Any]]:
        if self.conninfo is None:
            return {}
        from psycopg import AsyncConnection

        from quantcore.store.backtests import done_points

        async with await AsyncConnection.connect(self.conninfo) as conn:
            return await done_points(conn, sweep_id)


def _facts(opts: Options, tape: list[Bars], r: RunResult) -> dict[str, Any]:
    start, end = _window(tape)
    return {
        "strategy": f"{r.strategy} v{r.version}", "settings": json.dumps(r.params),
        "tape": json.dumps(opts.tape_spec), "coins": ", ".join(b.symbol for b in tape),
        "window": f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC",
        "costs": f"commission {opts.costs.commission:.4%} per side, slippage "
        f"{opts.costs.slippage:.4%}, size {opts.costs.size:g} × equity",
        "rules": "decision at a bar's close, fill at the next open; one position per coin; "
        "SL/TP on high/low, the stop first when a bar touches both; coins equal-weight",
    }  # fmt: skip


def _report_dir(opts: Options, label: str) -> Path:
    base = opts.report_dir or Path("reports")
    return base / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{label}"


async def backtest(opts: Options, conninfo: str | None, out: Any = None) -> int:
    """The command. Raises BadInput / TapeError for refused input (the CLI maps them to 2)."""
    out = out or sys.stdout
    validate(opts)
    strategy = make_strategy(opts.strategy, opts.settings)
    tape = await load_tape(opts, conninfo if opts.tape != "sim" else None, strategy)
    check_inputs(strategy, tape)
    store = Store(conninfo if opts.write_db else None)
    if opts.walk_forward:
        return await _walk_forward(opts, tape, store, out)
    if opts.grid or opts.search == "random":
        return await _sweep(opts, tape, store, out)
    r = run_strategy(strategy, tape, opts.costs)
    facts = _facts(opts, tape, r)
    hunts = hunt_score_of(r, tape)  # the sim tape's whale ground truth
    if hunts is not None:
        facts["whale hunts"] = hunt_line(hunts)
    report = write_report(
        r, _report_dir(opts, r.strategy), f"backtest · {r.strategy} v{r.version}", facts
    )
    run_id = await store.write(opts, r, tape, report=report)
    rows = [("portfolio", r.metrics), *sorted(r.per_coin.items())[:20]]
    print(text_table(rows, f"{r.strategy} v{r.version}"), file=out)
    if r.metrics.warning:
        print(f"warning: {r.metrics.warning}", file=out)
    if hunts is not None:
        print(f"whale hunts: {hunt_line(hunts)}", file=out)
    print(f"run {run_id}; report {report}", file=out)
    return 0


def _sweep_id(opts: Options, extra: dict[str, Any]) -> str:
    blob = json.dumps(
        {"s": opts.strategy, "base": opts.settings, "grid": opts.grid, "tape": opts.tape_spec,
         "costs": opts.costs.__dict__, **extra},
        sort_keys=True, default=str,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _progress(total: int, done: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="run", file=sys.stderr)


async def _run_jobs(
    opts: Options, tape: list[Bars], store: Store, jobs: list[Job], sweep_id: str, desc: str,
    window_of: Callable[[Job], tuple[datetime, datetime] | None],
) -> dict[tuple[str, int, str], dict[str, Any]]:  # fmt: skip
    """Run what is not stored yet, store each as it finishes; all points' metrics back."""
    done = await store.done(sweep_id)

    def key(j: Job) -> tuple[str, int, str]:
        return (params_hash(make_strategy(j.name, j.settings)), j.fold, j.phase)

    todo = [j for j in jobs if key(j) not in done]
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Job, RunResult]] = asyncio.Queue()

    def finished(j: Job, r: RunResult) -> None:  # in the worker thread
        loop.call_soon_threadsafe(queue.put_nowait, (j, r))

    with _progress(len(jobs), len(jobs) - len(todo), desc) as bar:
        runner = asyncio.ensure_future(
            asyncio.to_thread(execute, todo, tape, opts.workers, finished)
        )
        received = 0
        while received < len(todo):
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                if queue.empty():
                    runner.result()  # a failed job: raise it here
                    continue
                item = queue.get_nowait()
            else:
                item = getter.result()
            j, r = item
            # stored as each point finishes, one transaction each: a re-run resumes from here
            await store.write(
                opts, r, tape, sweep_id=sweep_id, fold=j.fold, phase=j.phase, window=window_of(j)
            )
            done[key(j)] = {"params": r.params, **r.metrics.as_dict()}
            received += 1
            bar.update(1)
        await runner
    return done


def _bar_time(tape: list[Bars], i: int) -> datetime:
    b = tape[0]
    return datetime.fromtimestamp(
        int(b.start_s[min(i, len(b) - 1)]) + (b.interval_s if i >= len(b) else 0), UTC
    )


async def _sweep(opts: Options, tape: list[Bars], store: Store, out: Any) -> int:
    points = sweep_points(opts)
    n = len(tape[0])
    sweep_id = _sweep_id(opts, _search_key(opts))
    jobs = [Job(opts.strategy, p, opts.costs, 0, "full", 0, n) for p in points]
    kind = "random search" if opts.search == "random" else "sweep"
    done = await _run_jobs(
        opts, tape, store, jobs, sweep_id, f"{kind} {len(points)} points", lambda j: None
    )
    ranked = sorted(
        ((params_hash(make_strategy(opts.strategy, p)), p) for p in points),
        key=lambda hp: score(done[(hp[0], 0, "full")], opts.objective), reverse=True,
    )  # fmt: skip
    rows = [(json.dumps(p, sort_keys=True), done[(h, 0, "full")]) for h, p in ranked]
    best = make_strategy(opts.strategy, ranked[0][1])
    r = run_strategy(best, tape, opts.costs)
    report = write_report(
        r, _report_dir(opts, f"sweep-{opts.strategy}"),
        f"sweep · {opts.strategy} · best by {opts.objective}", _facts(opts, tape, r), sweep=rows,
    )  # fmt: skip
    print(text_table(rows[:15], f"sweep {sweep_id} (by {opts.objective})"), file=out)
    print(f"{len(points)} points; best {json.dumps(ranked[0][1])}; report {report}", file=out)
    return 0


async def _walk_forward(opts: Options, tape: list[Bars], store: Store, out: Any) -> int:
    points = sweep_points(opts)
    n = len(tape[0])
    fl = folds(n, opts.walk_forward)
    sweep_id = _sweep_id(
        opts, {"walk_forward": opts.walk_forward, "objective": opts.objective, **_search_key(opts)}
    )

    def window_of(j: Job) -> tuple[datetime, datetime]:
        return (_bar_time(tape, j.a), _bar_time(tape, j.b))

    fit_jobs = [
        Job(opts.strategy, p, opts.costs, k, "fit", a, b)
        for k, (a, b, _) in enumerate(fl) for p in points
    ]  # fmt: skip
    done = await _run_jobs(opts, tape, store, fit_jobs, sweep_id, "walk-forward fit", window_of)
    chosen = []
    for k in range(len(fl)):
        best = max(
            points,
            key=lambda p: score(
                done[(params_hash(make_strategy(opts.strategy, p)), k, "fit")], opts.objective
            ),
        )
        chosen.append(best)
    test_jobs = [
        Job(opts.strategy, chosen[k], opts.costs, k, "test", b, e) for k, (_, b, e) in enumerate(fl)
    ]
    results: dict[int, RunResult] = {}

    def keep(j: Job, r: RunResult) -> None:
        results[j.fold] = r

    execute(test_jobs, tape, opts.workers, keep)
    stored = await store.done(sweep_id)
    for j in test_jobs:
        if (params_hash(make_strategy(j.name, j.settings)), j.fold, "test") not in stored:
            await store.write(
                opts,
                results[j.fold],
                tape,
                sweep_id=sweep_id,
                fold=j.fold,
                phase="test",
                window=window_of(j),
            )
    # out of sample: the test windows chained, one after the other
    level, curves, pnl, pos = 1.0, [], [], []
    fees = funding = 0.0
    for k in range(len(fl)):
        r = results[k]
        # a fold's costs are fractions of its own start; the chain starts it at `level`
        fees += r.metrics.fees_pct / 100 * level
        funding += r.metrics.funding_pct / 100 * level
        curves.append(r.equity * level)
        level = float(curves[-1][-1])
        pnl += [p for res in r.results for p in (res.trades.pnl_pct / len(r.results)).tolist()]
        pos.append(np.mean(np.stack([np.abs(res.position) for res in r.results]), axis=0))
    equity = np.concatenate(curves)
    oos = mx.compute(pnl, equity, np.concatenate(pos), tape[0].interval_s, fees, funding)
    rows: list[tuple[str, Any]] = [("out of sample", oos)] + [
        (f"fold {k} test {json.dumps(chosen[k], sort_keys=True)}", results[k].metrics)
        for k in range(len(fl))
    ]
    first = results[0]
    from dataclasses import replace

    joined = replace(
        first, equity=equity, metrics=oos, params={"folds": chosen},
        start_s=np.concatenate([results[k].start_s for k in range(len(fl))]),
        results=[res for k in range(len(fl)) for res in results[k].results],
        per_coin={f"{s} fold {k}": m for k in range(len(fl)) for s, m in results[k].per_coin.items()},
    )  # fmt: skip
    report = write_report(
        joined, _report_dir(opts, f"walkforward-{opts.strategy}"),
        f"walk-forward · {opts.strategy} · {len(fl)} folds, chosen by {opts.objective}",
        _facts(opts, tape, first), extra=[(lbl, m) for lbl, m in rows[1:]],
    )  # fmt: skip
    # the headline: the chain stored as a run of its own (phase oos), once per walk-forward
    oos_hash = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]
    if (oos_hash, 0, "oos") not in stored:
        await store.write(
            opts, joined, tape, sweep_id=sweep_id, phase="oos", report=report, phash=oos_hash,
            window=(_bar_time(tape, fl[0][1]), _bar_time(tape, fl[-1][2])),
        )  # fmt: skip
    print(text_table(rows, f"walk-forward {sweep_id}"), file=out)
    if oos.warning:
        print(f"warning (out of sample): {oos.warning}", file=out)
    print(f"report {report}", file=out)
    return 0
