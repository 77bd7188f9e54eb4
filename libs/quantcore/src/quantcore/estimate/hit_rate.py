"""The live hit rate of every heatmap source against the liquidations that were recorded
(issue 14; works on simulated and real data alike): the heatmaps of each source that were the
latest `window` ago are scored against what happened since — of their top clusters (the
largest REALISED_TOP peaks of each coin's heatmap) that price reached, how many saw
liquidations recorded within ±tol within the window (precision), and which share of the
liquidation value recorded in the window lay within ±tol of a predicted cluster (recall).
The scoring is quantcore.math.heatmap_eval.realised; `quant heatmap-eval --stored-source`
and the liquidation collector's periodic evaluation both call `score`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from quantcore.math import heatmap_eval as he
from quantcore.model.market import HeatmapSource, heatmap_source
from quantcore.store.heatmap_eval import CoinAfter, after_snapshots, heatmap_level_sources

REALISED_TOP = 10  # clusters per coin scored
TIMEFRAME = "1y"  # the heatmap scored: the one holding every other's positions


@dataclass(frozen=True)
class Scored:
    coins: int
    clusters: int  # predicted clusters scored
    realised: he.Realised


@dataclass(frozen=True)
class HitRate:
    """One row of heatmap_hit_rates."""

    time: datetime
    heatmap_source: HeatmapSource
    timeframe: str
    predicted_at: datetime
    window_min: int
    tol_pct: float
    scored: Scored

    def row(self) -> tuple[Any, ...]:
        r = self.scored.realised

        def pct(x: float) -> float | None:
            return None if math.isnan(x) else x  # nothing to score: NULL, never a zero

        return (
            self.time, self.heatmap_source, self.timeframe, self.predicted_at, self.window_min,
            self.tol_pct, self.scored.coins, self.scored.clusters, r.reached, r.hit,
            r.value_total, r.value_in, pct(r.precision_pct), pct(r.recall_pct),
        )  # fmt: skip


def score(coins: list[CoinAfter], tol_pct: float = 1.0, window_s: float = 3600.0) -> Scored:
    """Each coin's top clusters against the candles and liquidations after its snapshot."""
    total = he.Realised(0, 0, 0.0, 0.0)
    clusters = 0
    for c in coins:
        pk = he.peaks(c.level_price, c.level_value, c.price, top=REALISED_TOP)
        reached = he.reach_times(pk.price, c.candle_start_s, c.candle_low, c.candle_high)
        clusters += int(pk.price.size)
        total = total + he.realised(
            pk.price, reached, c.liq_time_s, c.liq_price, c.liq_value, tol_pct=tol_pct,
            window_s=window_s,
        )  # fmt: skip
    return Scored(len(coins), clusters, total)


async def hit_rates(
    conn: AsyncConnection[Any], now: datetime, window_min: int = 60, tol_pct: float = 1.0,
    timeframe: str = TIMEFRAME,
) -> list[HitRate]:  # fmt: skip
    """Per heatmap source with heatmaps stored: its heatmaps that were the latest `window_min`
    ago, scored against the candles and liquidations of the window since."""
    at = now - timedelta(minutes=window_min)
    out: list[HitRate] = []
    for level_source in await heatmap_level_sources(conn):
        src = heatmap_source(level_source)
        if src is None:
            continue
        coins = await after_snapshots(conn, level_source, timeframe, at, window_min / 60.0)
        if not coins:
            continue
        scored = score(coins, tol_pct, window_min * 60.0)
        out.append(HitRate(now, src, timeframe, at, window_min, tol_pct, scored))
    return out
