"""One ranking cycle's decisions: evaluate the universe (quantcore.math.universe), keep the
top N with every number behind each score, and for the watched top coins check the trigger
and read the market view the trade decision (quantcore.trading.decision) plans from. Pure:
the ranker service does the I/O, a backtest can call the same functions. The trigger itself:
quantcore.scan.trigger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from quantcore.config import Settings
from quantcore.math import imbalance
from quantcore.math.ranking import ScoreWeights
from quantcore.math.universe import UniverseEvaluation, boosted, evaluate
from quantcore.math.values import clean, num
from quantcore.model.market import HeatmapSource
from quantcore.model.plan import MarketView
from quantcore.store.levels import LatestLevels
from quantcore.trading import view

F = NDArray[np.float64]
Direction = Literal["long", "short"]
SIGNAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://whalestack/signals")


@dataclass(frozen=True)
class RankParams:
    tf_weights: list[float]
    weights: ScoreWeights
    merge_pct: float
    top_n: int
    watch_top: int
    trigger_oi_pct: float
    trigger_volume_ratio: float
    trigger_move_pct: float
    cooldown_s: float
    hybrid_boost: float = 0.0  # POLY_HYBRID_BOOST: score × (1 + boost) for a hybrid coin
    hybrid_window_min: float = 60.0

    @classmethod
    def from_settings(cls, s: Settings) -> RankParams:
        return cls(
            tf_weights=s.timeframe_weights,
            weights=ScoreWeights(s.rank_weight_imbalance, s.rank_weight_cluster,
                                 s.rank_weight_success, s.rank_cluster_cap_pct),
            merge_pct=s.cluster_merge_pct, top_n=s.rank_top_n, watch_top=s.rank_watch_top,
            trigger_oi_pct=s.trigger_oi_pct, trigger_volume_ratio=s.trigger_volume_ratio,
            trigger_move_pct=s.trigger_move_pct, cooldown_s=s.signal_cooldown_s,
            hybrid_boost=s.poly_hybrid_boost, hybrid_window_min=s.poly_hybrid_window_min,
        )  # fmt: skip

    def registry(self) -> dict[str, Any]:
        """The parameters recorded in `scanners` (their hash is part of the version)."""
        out: dict[str, Any] = clean(self.__dict__ | {"weights": self.weights.__dict__})
        return out


@dataclass(frozen=True)
class RankInputs:
    """Everything a ranking reads, as arrays over `levels.symbols` (C) × timeframes (T)."""

    levels: LatestLevels
    price: F  # (C,) NaN where unknown
    price_time: list[datetime | None]
    typical: F  # (C,) USD, NaN where unknown
    success: F  # (C, T) 0..1, NaN where no history
    wick_up: F  # (C, T) percent, NaN where unknown
    wick_down: F  # (C, T)
    hybrid: NDArray[np.bool_] | None = None  # (C,) a hybrid Polymarket signal in the window

    @property
    def symbols(self) -> list[str]:
        return self.levels.symbols


def rank(inputs: RankInputs, p: RankParams) -> UniverseEvaluation:
    # a coin without a current price has no "above" or "below": no levels, so it is neutral
    known = np.isfinite(inputs.price)[:, None, None]
    ev = evaluate(
        inputs.symbols, np.where(known, inputs.levels.prices, np.nan),
        np.where(known, inputs.levels.values, 0.0), inputs.price, p.tf_weights,
        inputs.typical, np.nan_to_num(inputs.success, nan=0.0), p.merge_pct, p.weights,
    )  # fmt: skip
    if p.hybrid_boost > 0 and inputs.hybrid is not None and inputs.hybrid.any():
        ev = boosted(ev, np.where(inputs.hybrid, p.hybrid_boost, 0.0))
    return ev


def top(ev: UniverseEvaluation, n: int) -> list[int]:
    """The best n coins with a direction (neutral or unpriced coins never rank)."""
    return [i for i in ev.order if np.isfinite(ev.score[i]) and ev.direction[i] != "neutral"][:n]


def ranking_inputs(
    ev: UniverseEvaluation, inputs: RankInputs, p: RankParams, i: int
) -> dict[str, Any]:
    """Every number behind coin i's score, enough to replay it (levels by snapshot key)."""
    tfs = inputs.levels.timeframes
    t = int(ev.target_timeframe[i])
    w = p.weights
    out: dict[str, Any] = clean({
        "price": inputs.price[i], "price_time": inputs.price_time[i],
        "ratio": ev.ratio[i], "dominant": ev.dominant[i], "direction": ev.direction[i],
        "shorts_above": dict(zip(tfs, ev.shorts_above[i], strict=True)),
        "longs_below": dict(zip(tfs, ev.longs_below[i], strict=True)),
        "timeframe_weights": dict(zip(tfs, p.tf_weights, strict=True)),
        "target": {
            "timeframe": tfs[t] if t >= 0 else None, "low": ev.target_low[i],
            "high": ev.target_high[i], "value_usd": ev.target_value[i],
        },
        "typical_cluster_usd": inputs.typical[i], "size_pct": ev.size_pct[i],
        "success": {"used": ev.success[i], "by_timeframe": dict(zip(tfs, inputs.success[i], strict=True))},
        "weights": w.__dict__, "merge_pct": p.merge_pct,
        "score_parts": {
            "imbalance": ev.dominant[i] * w.imbalance,
            "cluster": min(float(ev.size_pct[i]), w.cluster_cap_pct) * w.cluster,
            "success": ev.success[i] * w.success,
        },
        "hybrid_boost": (
            p.hybrid_boost if p.hybrid_boost > 0 and inputs.hybrid is not None
            and bool(inputs.hybrid[i]) else 0.0
        ),
        "score": ev.score[i],
        "levels": {
            tfs[k]: {"time": s.time, "source": s.source}
            for k in range(len(tfs)) if (s := inputs.levels.snapshots.get((i, k)))
        },
    })  # fmt: skip
    return out


def coin_heatmap_source(ev: UniverseEvaluation, inputs: RankInputs, i: int) -> HeatmapSource | None:
    """Which heatmap coin i's ranking came from: its target timeframe's, else the one most of
    its timeframes came from (both run side by side when a CoinGlass key is set)."""
    snaps = inputs.levels.snapshots
    t = int(ev.target_timeframe[i])
    if t >= 0 and (snap := snaps.get((i, t))) is not None:
        return snap.heatmap_source
    seen: list[HeatmapSource] = [
        src for (c, _), s in snaps.items() if c == i and (src := s.heatmap_source) is not None
    ]
    if not seen:
        return None
    return max(sorted(set(seen)), key=lambda src: seen.count(src))


def ranking_rows(
    ev: UniverseEvaluation, inputs: RankInputs, p: RankParams, chosen: list[int], at: datetime,
    cycle_id: str, scanner: str, version: str,
) -> list[tuple[Any, ...]]:  # fmt: skip
    strength = imbalance.strength(ev.ratio)
    return [
        (
            at, cycle_id, rank, ev.symbols[i], float(ev.score[i]), float(ev.ratio[i]),
            float(strength[i]), ev.direction[i], num(ev.size_pct[i]), num(ev.success[i]),
            num((ev.target_low[i] + ev.target_high[i]) / 2), num(inputs.price[i]),
            scanner, version, ranking_inputs(ev, inputs, p, i),
            coin_heatmap_source(ev, inputs, i),
        )
        for rank, i in enumerate(chosen, start=1)
    ]  # fmt: skip


# --- trade plan -------------------------------------------------------------------------------


def market_view(ev: UniverseEvaluation, inputs: RankInputs, p: RankParams, i: int) -> MarketView:
    """What the trade decision (quantcore.trading.decision) reads about coin i: the target
    cluster, the nearest cluster on the other side of price in the target's heatmap (for the
    cluster stop), the target timeframe's max adverse wick, and when those levels were read."""
    direction: Direction = "long" if ev.direction[i] == "long" else "short"
    t = int(ev.target_timeframe[i])
    wick_table = inputs.wick_down if direction == "long" else inputs.wick_up
    # the coin's data is as old as its oldest timeframe (the autotrader's freshness limit)
    times = [snap.time for (c, _), snap in inputs.levels.snapshots.items() if c == i]
    return view.market_view(
        symbol=ev.symbols[i], direction=direction, price=float(inputs.price[i]),
        target_low=float(ev.target_low[i]), target_high=float(ev.target_high[i]),
        target_value=num(ev.target_value[i]),
        tf_prices=inputs.levels.prices[i, t] if t >= 0 else None,
        tf_values=inputs.levels.values[i, t] if t >= 0 else None, merge_pct=p.merge_pct,
        wick_pct=num(wick_table[i, t]) if t >= 0 else None,
        data_time=min(times) if times else None,
        timeframe=inputs.levels.timeframes[t] if t >= 0 else None,
    )  # fmt: skip


def signal_id(cycle_id: str, symbol: str) -> uuid.UUID:
    """Deterministic: a re-run of the same cycle can never make a second signal."""
    return uuid.uuid5(SIGNAL_NAMESPACE, f"{cycle_id}:{symbol}")
