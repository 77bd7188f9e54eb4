"""SQL of the backtester: the database tapes (1-min candles, open interest, funding and the
heatmap refreshes, as stored by the collectors or `quant backfill`) and the `backtest_runs` /
`backtest_trades` tables. The live strategy runner reads its bars and heatmaps here too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

from quantcore.db import copy_rows

F = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class StoredCandles:
    symbol: str
    start_s: I64
    ohlcv: F  # (5, n)
    oi_time_s: I64
    oi: F
    funding_time_s: I64  # settlement times (s)
    funding: F  # the rate settled there (fraction: 0.0001 = 0.01 %)


async def tape_symbols(
    conn: AsyncConnection[Any], start: datetime, end: datetime, source: str | None
) -> list[str]:
    """Symbols with 1-min candles in [start, end) (of one source, or any)."""
    cur = await conn.execute(
        "SELECT DISTINCT symbol FROM ohlcv WHERE interval = '1m' AND time >= %s AND time < %s"
        " AND (%s::text IS NULL OR source = %s) ORDER BY symbol",
        (start, end, source, source),
    )
    return [r[0] for r in await cur.fetchall()]


async def latest_candle(conn: AsyncConnection[Any], source: str | None = None) -> datetime | None:
    """Open time of the newest stored 1-min candle (the live strategy runner's window end)."""
    cur = await conn.execute(
        "SELECT max(time) FROM ohlcv WHERE interval = '1m' AND (%s::text IS NULL OR source = %s)",
        (source, source),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def load_candles(
    conn: AsyncConnection[Any], symbol: str, start: datetime, end: datetime, source: str | None
) -> StoredCandles:
    """A coin's 1-min candles in [start, end) and its open interest snapshots up to `end`."""
    cur = await conn.execute(
        """
        SELECT extract(epoch FROM time)::int8, open::float8, high::float8, low::float8,
               close::float8, volume::float8
        FROM ohlcv
        WHERE symbol = %s AND interval = '1m' AND time >= %s AND time < %s
          AND (%s::text IS NULL OR source = %s)
        ORDER BY time
        """,
        (symbol, start, end, source, source),
    )
    rows = await cur.fetchall()
    arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
    cur = await conn.execute(
        """
        SELECT extract(epoch FROM time)::int8, coalesce(open_interest, open_interest_value)::float8
        FROM market_snapshots
        WHERE symbol = %s AND time >= %s AND time <= %s
          AND coalesce(open_interest, open_interest_value) IS NOT NULL
        ORDER BY time
        """,
        (symbol, start, end),
    )
    oi = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 2)
    # a settlement at T pays the rate the snapshots announced for T (the newest one before it)
    cur = await conn.execute(
        """
        SELECT DISTINCT ON (next_funding_at) extract(epoch FROM next_funding_at)::int8,
               funding_rate_pct::float8 / 100
        FROM market_snapshots
        WHERE symbol = %s AND time > %s::timestamptz - interval '1 day' AND time <= %s
          AND next_funding_at > %s AND next_funding_at <= %s AND time <= next_funding_at
          AND funding_rate_pct IS NOT NULL
        ORDER BY next_funding_at, time DESC
        """,
        (symbol, start, end, start, end),
    )
    fu = np.array(await cur.fetchall(), dtype=np.float64).reshape(-1, 2)
    return StoredCandles(
        symbol=symbol, start_s=arr[:, 0].astype(np.int64), ohlcv=arr[:, 1:].T.copy(),
        oi_time_s=oi[:, 0].astype(np.int64), oi=oi[:, 1].copy(),
        funding_time_s=fu[:, 0].astype(np.int64), funding=fu[:, 1].copy(),
    )  # fmt: skip


@dataclass(frozen=True)
class RefreshTimes:
    """A coin's heatmap refreshes as stored (liquidation_levels' snapshot times of any of the
    timeframes), ascending, with the level source of each (the smallest name where two
    sources share a time)."""

    symbol: str
    refreshed_s: I64
    sources: list[str]


async def heatmap_refresh_times(
    conn: AsyncConnection[Any], symbol: str, start: datetime, end: datetime,
    timeframes: Sequence[str],
) -> RefreshTimes:  # fmt: skip
    """The coin's refreshes stamped in (start, end], and the newest one at or before `start`
    (what a decision at the window's first bar reads: found per timeframe at the end of its
    key range, never by a scan of the history before the window)."""
    cur = await conn.execute(
        """
        WITH before AS (
            SELECT coalesce(max(b.time), %(a)s) AS t
            FROM unnest(%(tf)s::text[]) AS f(tf)
            CROSS JOIN LATERAL (
                SELECT time FROM liquidation_levels
                WHERE symbol = %(s)s AND timeframe = f.tf AND time <= %(a)s
                ORDER BY time DESC LIMIT 1
            ) b
        )
        SELECT extract(epoch FROM time)::int8, min(source) FROM liquidation_levels
        WHERE symbol = %(s)s AND timeframe = ANY(%(tf)s) AND time <= %(b)s
          AND time >= (SELECT t FROM before)
        GROUP BY time ORDER BY time
        """,
        {"s": symbol, "tf": list(timeframes), "a": start, "b": end},
    )
    rows = await cur.fetchall()
    return RefreshTimes(
        symbol=symbol, refreshed_s=np.array([r[0] for r in rows], dtype=np.int64),
        sources=[r[1] for r in rows],
    )  # fmt: skip


async def load_heatmap_refreshes(
    conn: AsyncConnection[Any], symbol: str, refreshed_s: Sequence[int], timeframes: Sequence[str]
) -> dict[int, tuple[F, F]]:
    """The coin's levels as of each refresh time: per timeframe the newest snapshot stamped at
    or before it (the one the liquidation collector wrote then, or an older one where that
    timeframe was not refreshed), value_usd > 0, in the key's (side, price) order as the
    scanners read them (quantcore.store.levels). Per refresh a (timeframes, levels) pair of
    arrays, NaN-padded prices and 0-padded values, one row per timeframe."""
    if not refreshed_s:
        return {}
    cur = await conn.execute(
        """
        SELECT extract(epoch FROM w.r)::int8, s.timeframe, lv.prices, lv.vals
        FROM unnest(%(r)s::timestamptz[]) AS w(r)
        CROSS JOIN unnest(%(tf)s::text[]) AS f(timeframe)
        CROSS JOIN LATERAL (
            SELECT l.timeframe, l.time, l.source FROM liquidation_levels l
            WHERE l.symbol = %(s)s AND l.timeframe = f.timeframe AND l.time <= w.r
            ORDER BY l.time DESC, l.source LIMIT 1
        ) s
        CROSS JOIN LATERAL (
            SELECT array_agg(l.price::float8 ORDER BY l.side, l.price) AS prices,
                   array_agg(l.value_usd::float8 ORDER BY l.side, l.price) AS vals
            FROM liquidation_levels l
            WHERE l.symbol = %(s)s AND l.timeframe = s.timeframe AND l.time = s.time
              AND l.source = s.source AND l.value_usd > 0
        ) lv
        WHERE lv.prices IS NOT NULL
        """,
        {
            "r": [datetime.fromtimestamp(int(t), UTC) for t in refreshed_s],
            "tf": list(timeframes), "s": symbol,
        },
    )  # fmt: skip
    got: dict[int, dict[int, tuple[list[float], list[float]]]] = {int(t): {} for t in refreshed_s}
    tf_of = {tf: i for i, tf in enumerate(timeframes)}
    for t, tf, prices, vals in await cur.fetchall():
        got[int(t)][tf_of[tf]] = (prices, vals)
    out: dict[int, tuple[F, F]] = {}
    for t, rows in got.items():
        width = max((len(p) for p, _ in rows.values()), default=0)
        prices_a = np.full((len(timeframes), width), np.nan)
        values_a = np.zeros((len(timeframes), width))
        for k, (p, v) in rows.items():
            prices_a[k, : len(p)] = p
            values_a[k, : len(v)] = v
        out[t] = (prices_a, values_a)
    return out


@dataclass(frozen=True)
class RunRow:
    run_id: str
    strategy: str
    version: str
    params: dict[str, Any]
    params_hash: str
    tape: str
    tape_spec: dict[str, Any]
    symbols: list[str]
    window_start: datetime
    window_end: datetime
    sweep_id: str | None
    fold: int
    phase: str
    commission: float
    slippage: float
    size: float
    metrics: dict[str, Any]
    report_path: str | None = None


TradeRow = tuple[
    str, int, str, str, datetime, datetime, float, float, float | None, float | None, str,
    float, float, float, float,
]  # fmt: skip
TRADE_COLUMNS = (
    "run_id", "seq", "symbol", "side", "entry_time", "exit_time", "entry_price", "exit_price",
    "stop_loss", "take_profit", "exit_reason", "pnl_pct", "return_pct", "fees_pct", "funding_pct",
)  # fmt: skip
EquityRow = tuple[str, int, datetime, float, float, float]
EQUITY_COLUMNS = ("run_id", "seq", "time", "days", "equity_pct", "drawdown_pct")
METRIC_COLUMNS = (
    "trades", "win_rate_pct", "avg_win_pct", "avg_loss_pct", "reward_risk", "profit_factor",
    "pnl_pct", "max_drawdown_pct", "sharpe", "sortino", "exposure_pct", "trades_per_day",
    "fees_pct", "funding_pct", "days", "warning",
)  # fmt: skip


async def write_run(
    conn: AsyncConnection[Any], run: RunRow, trades: Sequence[TradeRow],
    equity: Sequence[EquityRow] = (),
) -> None:  # fmt: skip
    """One run, its trades and its thinned equity curve in one transaction: all or nothing."""
    cols = (
        "run_id", "strategy", "version", "params", "params_hash", "tape", "tape_spec", "symbols",
        "window_start", "window_end", "sweep_id", "fold", "phase", "commission", "slippage",
        "size", "report_path", *METRIC_COLUMNS,
    )  # fmt: skip
    values = (
        run.run_id, run.strategy, run.version, json.dumps(run.params), run.params_hash,
        run.tape, json.dumps(run.tape_spec), run.symbols, run.window_start, run.window_end,
        run.sweep_id, run.fold, run.phase, run.commission, run.slippage, run.size,
        run.report_path, *(run.metrics[c] for c in METRIC_COLUMNS),
    )  # fmt: skip
    async with conn.transaction():
        await conn.execute(
            f"INSERT INTO backtest_runs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
            values,
        )
        if trades:
            await copy_rows(conn, "backtest_trades", TRADE_COLUMNS, list(trades))
        if equity:
            await copy_rows(conn, "backtest_equity", EQUITY_COLUMNS, list(equity))


async def done_points(
    conn: AsyncConnection[Any], sweep_id: str
) -> dict[tuple[str, int, str], dict[str, Any]]:
    """The sweep's finished points: (params_hash, fold, phase) → their metrics."""
    cur = await conn.execute(
        f"SELECT params_hash, fold, phase, params, {', '.join(METRIC_COLUMNS)}"
        " FROM backtest_runs WHERE sweep_id = %s",
        (sweep_id,),
    )
    out: dict[tuple[str, int, str], dict[str, Any]] = {}
    for row in await cur.fetchall():
        out[(row[0], row[1], row[2])] = {
            "params": row[3],
            **dict(zip(METRIC_COLUMNS, row[4:], strict=True)),
        }
    return out


async def set_report_path(conn: AsyncConnection[Any], run_id: str, path: str) -> None:
    await conn.execute(
        "UPDATE backtest_runs SET report_path = %s WHERE run_id = %s", (path, run_id)
    )
