"""coin_liquidation_patterns rows: wick stats per coin × timeframe window (quantcore.math.wicks
on aggregated candles) joined with the judged outcomes of the coin's past target clusters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from quantcore.math.values import num
from quantcore.math.wicks import WickStats, wick_stats
from quantcore.model.market import TIMEFRAME_DURATION
from quantcore.store.clusters import Outcomes


def wick_windows(
    candles: dict[str, Any],
    symbols: Sequence[str],
    timeframes: Sequence[str],
    now: datetime,
    max_window: timedelta,
) -> dict[tuple[str, str], WickStats]:
    """Wick stats of each coin over each timeframe's window (capped at `max_window`)."""
    out: dict[tuple[str, str], WickStats] = {}
    coin = candles["coin"]
    if coin.size == 0:
        return out
    order = np.argsort(coin, kind="stable")
    bounds = np.searchsorted(coin[order], np.arange(len(symbols) + 1))
    now_min = now.timestamp() / 60
    for i, symbol in enumerate(symbols):
        idx = order[bounds[i] : bounds[i + 1]]
        if idx.size == 0:
            continue
        bucket = candles["bucket"][idx]
        for tf in timeframes:
            window = min(TIMEFRAME_DURATION[tf], max_window).total_seconds() / 60
            sel = idx[bucket >= now_min - window]
            if sel.size == 0:
                continue
            out[(symbol, tf)] = wick_stats(
                candles["open"][sel], candles["high"][sel], candles["low"][sel],
                candles["close"][sel],
            )  # fmt: skip
    return out


def pattern_rows(
    wicks: dict[tuple[str, str], WickStats],
    outcomes: dict[tuple[str, str], Outcomes],
    horizon: timedelta,
    now: datetime,
    agent: str,
    version: str,
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for key in sorted(set(wicks) | set(outcomes)):
        w, o = wicks.get(key), outcomes.get(key)
        samples = o.samples if o else 0
        wins = o.wins if o else 0
        rows.append((
            key[0], key[1], wins / samples if samples else None, samples, wins, samples - wins,
            int(horizon.total_seconds()), num(o.avg_time_to_target_s) if o else None,
            w.max_up_pct if w else None, w.max_down_pct if w else None,
            w.p50_up_pct if w else None, w.p95_up_pct if w else None,
            w.p50_down_pct if w else None, w.p95_down_pct if w else None,
            now, agent, version,
        ))  # fmt: skip
    return rows
