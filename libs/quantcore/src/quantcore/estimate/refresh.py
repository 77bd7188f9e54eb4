"""The estimate's refresh of one coin: fetch what is missing of its inputs from the venue's
public endpoints (no key), store them, and turn the model's grid into `Heatmap`s.

Inputs kept per coin (heatmap_inputs): 4-hour candles + 4-hour open interest for a year, and
5-minute candles + 5-minute open interest for the last RECENT_S. A refresh fetches from the
newest stored interval on (the first one backfills: resumable, since every page is stored
by interval key), so a collector restart costs one page per series. The taker flow and the
account ratio the market collector gathers (taker_flow, account_ratios) are then folded into
the intervals written and the last FOLD_AGAIN_S of them (minutes flushed late).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection

from quantcore.math import liqmodel as lm
from quantcore.model.market import TIMEFRAMES, Candle, Heatmap, HeatmapLevel, OpenInterestPoint
from quantcore.store.heatmap_inputs import (
    InputRows,
    fold_collected,
    last_input_times,
    read_inputs,
    write_inputs,
)

DAY = 86_400
RECENT_S = 3 * DAY
DEEP_S = 366 * DAY
# (interval seconds, Bybit kline interval, Bybit open-interest interval, history kept)
SERIES = ((14_400, "240", "4h", DEEP_S), (300, "5", "5min", RECENT_S))
FOLD_AGAIN_S = 2 * 3600


class PublicMarketData(Protocol):
    async def klines(
        self, symbol: str, start: datetime, end: datetime, interval: str = "1"
    ) -> list[Candle]: ...

    async def open_interest(
        self, symbol: str, start: datetime, end: datetime, interval: str = "5min"
    ) -> list[OpenInterestPoint]: ...


@dataclass(frozen=True)
class SyncResult:
    intervals: int  # written
    without_oi: int  # of them, how many had no open interest point at their end
    folded: int = 0  # intervals given taker flow / account ratio
    errors: tuple[str, ...] = ()  # series that could not be fetched (the stored ones are used)
    empty: tuple[str, ...] = ()  # series the venue answered with nothing new


async def sync_inputs(
    market: PublicMarketData, conn: AsyncConnection[Any], symbol: str, now: datetime,
    source: str,
) -> SyncResult:  # fmt: skip
    """Fetch and store the finished intervals of `symbol` not stored yet (up to `now`)."""
    last = await last_input_times(conn, symbol)
    written = missing_oi = 0
    errors: list[str] = []
    empty: list[str] = []
    fold_from = now - timedelta(seconds=FOLD_AGAIN_S)
    for width, kline_iv, oi_iv, keep in SERIES:
        start = now - timedelta(seconds=keep)
        if width in last:
            start = max(start, last[width] + timedelta(seconds=width))
        if now - start < timedelta(seconds=width):
            continue  # no finished interval to fetch yet
        try:
            candles = [
                c for c in await market.klines(symbol, start, now, kline_iv)
                if c.confirmed and c.start + timedelta(seconds=width) <= now
            ]  # fmt: skip
            if not candles:
                empty.append(f"klines {kline_iv}")
                continue
            end = now + timedelta(seconds=width)
            oi = await market.open_interest(symbol, start, end, oi_iv)
        except Exception as exc:  # the venue failing must not stop the estimate
            errors.append(f"{kline_iv}/{oi_iv}: {str(exc)[:200]}")
            continue
        if not oi:
            empty.append(f"open interest {oi_iv}")
        rows = input_rows(symbol, width, candles, oi)
        missing_oi += int(np.isnan(rows.open_interest).sum())
        written += await write_inputs(conn, rows, source)
        fold_from = min(fold_from, candles[0].start)
    folded = await fold_collected(conn, symbol, fold_from)
    return SyncResult(written, missing_oi, folded, tuple(errors), tuple(empty))


def input_rows(
    symbol: str, width: int, candles: list[Candle], oi: list[OpenInterestPoint]
) -> InputRows:
    """Candles of one interval with the open interest at each one's end (NaN where the venue
    has no point there)."""
    at = {int(p.time.timestamp()): p.open_interest for p in oi}
    t = np.array([int(c.start.timestamp()) for c in candles], dtype=np.int64)
    n = t.size
    return InputRows(
        symbols=[symbol], coin=np.zeros(n, np.int64), time_s=t,
        interval_s=np.full(n, width, np.int64),
        open=np.array([c.open for c in candles]), high=np.array([c.high for c in candles]),
        low=np.array([c.low for c in candles]), close=np.array([c.close for c in candles]),
        open_interest=np.array([at.get(int(s) + width, np.nan) for s in t], dtype=np.float64),
        taker_buy=np.full(n, np.nan), taker_sell=np.full(n, np.nan),
        long_ratio=np.full(n, np.nan),
    )  # fmt: skip


def heatmaps(
    grid: lm.LevelGrid, symbols: list[str], price: np.ndarray, at: datetime
) -> list[Heatmap]:
    """The grid as one Heatmap per coin × timeframe with levels (source 'estimate')."""
    out: list[Heatmap] = []
    for c, symbol in enumerate(symbols):
        if not (np.isfinite(price[c]) and price[c] > 0):
            continue
        for t, tf in enumerate(TIMEFRAMES):
            p, v = grid.levels(c, t)
            if p.size == 0:
                continue
            out.append(
                Heatmap(
                    symbol=symbol, timeframe=tf, time=at, source="estimate",
                    price=float(price[c]),
                    levels=tuple(
                        HeatmapLevel(price=float(a), value_usd=float(b))
                        for a, b in zip(p, v, strict=True)
                    ),
                )
            )  # fmt: skip
    return out


@dataclass(frozen=True)
class Estimate:
    heatmaps: list[Heatmap]
    grid: lm.LevelGrid  # with `partial` (history shorter than the timeframes) per coin
    intervals: NDArray[np.int64]  # stored intervals read, per coin
    without_oi: NDArray[np.int64]  # of them, how many have no open interest, per coin

    def partial(self, coin: int) -> bool:
        """Incomplete inputs: history shorter than a year, or over 5 % of it without OI."""
        return bool(self.grid.partial[coin]) or bool(
            self.without_oi[coin] > MAX_MISSING_OI * max(int(self.intervals[coin]), 1)
        )


MAX_MISSING_OI = 0.05


async def estimate_as_of(
    conn: AsyncConnection[Any], symbols: list[str], at: datetime,
    params: lm.ModelParams | None = None, max_leverage: dict[str, float] | None = None,
) -> Estimate:  # fmt: skip
    """The estimate of `symbols` as of `at` from the stored inputs, seeing nothing later (the
    collector's refresh, and the backtester's view of any past moment)."""
    inputs, counts = await read_inputs(conn, symbols, at)
    if max_leverage and inputs.max_leverage is not None:
        caps = np.array([max_leverage.get(s, np.inf) for s in symbols], dtype=np.float64)
        inputs = replace(inputs, max_leverage=np.fmin(inputs.max_leverage, caps))
    grid = lm.estimate(inputs, params)
    known = np.isfinite(inputs.open)
    without_oi = (known & ~np.isfinite(inputs.oi_usd)).sum(axis=1).astype(np.int64)
    return Estimate(heatmaps(grid, symbols, inputs.price, at), grid, counts, without_oi)
