"""One ranking cycle's decisions: evaluate the universe (quantcore.math.universe), keep the
top N with every number behind each score, and for the watched top coins check the trigger
and plan the trade (quantcore.math.levels). Pure: the ranker service does the I/O, a backtest
can call the same functions. The trigger itself: quantcore.scan.trigger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from quantcore.config import Settings
from quantcore.math import clusters, imbalance, levels
from quantcore.math.ranking import ScoreWeights
from quantcore.math.universe import UniverseEvaluation, evaluate
from quantcore.math.values import clean, num
from quantcore.store.levels import LatestLevels

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
    entry_mode: Literal["conservative", "aggressive"]
    entry_beyond_pct: float
    take_profit_front_run_pct: float
    stop_beyond_pct: float
    stop_default_wick_pct: float

    @classmethod
    def from_settings(cls, s: Settings) -> RankParams:
        return cls(
            tf_weights=s.timeframe_weights,
            weights=ScoreWeights(s.rank_weight_imbalance, s.rank_weight_cluster,
                                 s.rank_weight_success, s.rank_cluster_cap_pct),
            merge_pct=s.cluster_merge_pct, top_n=s.rank_top_n, watch_top=s.rank_watch_top,
            trigger_oi_pct=s.trigger_oi_pct, trigger_volume_ratio=s.trigger_volume_ratio,
            trigger_move_pct=s.trigger_move_pct, cooldown_s=s.signal_cooldown_s,
            entry_mode=s.entry_mode, entry_beyond_pct=s.entry_beyond_pct,
            take_profit_front_run_pct=s.take_profit_front_run_pct,
            stop_beyond_pct=s.stop_beyond_pct, stop_default_wick_pct=s.stop_default_wick_pct,
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

    @property
    def symbols(self) -> list[str]:
        return self.levels.symbols


def rank(inputs: RankInputs, p: RankParams) -> UniverseEvaluation:
    # a coin without a current price has no "above" or "below": no levels, so it is neutral
    known = np.isfinite(inputs.price)[:, None, None]
    return evaluate(
        inputs.symbols, np.where(known, inputs.levels.prices, np.nan),
        np.where(known, inputs.levels.values, 0.0), inputs.price, p.tf_weights,
        inputs.typical, np.nan_to_num(inputs.success, nan=0.0), p.merge_pct, p.weights,
    )  # fmt: skip


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
        "score": ev.score[i],
        "levels": {
            tfs[k]: {"time": s.time, "source": s.source}
            for k in range(len(tfs)) if (s := inputs.levels.snapshots.get((i, k)))
        },
    })  # fmt: skip
    return out


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
        )
        for rank, i in enumerate(chosen, start=1)
    ]  # fmt: skip


# --- trade plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradePlan:
    entry: float
    stop_loss: float
    take_profit: float
    detail: dict[str, Any]


def plan_trade(ev: UniverseEvaluation, inputs: RankInputs, p: RankParams, i: int) -> TradePlan:
    """Entry, stop and take-profit from the target cluster (quantcore.math.levels): the stop is
    the wider of the wick stop (the target timeframe's max adverse wick) and the cluster stop
    (beyond the nearest cluster on the other side of price, in the target's heatmap)."""
    direction: Direction = "long" if ev.direction[i] == "long" else "short"
    low, high = float(ev.target_low[i]), float(ev.target_high[i])
    price = float(inputs.price[i])
    t = int(ev.target_timeframe[i])
    entry = levels.entry_price(direction, low, high, p.entry_mode, p.entry_beyond_pct)
    tp = levels.take_profit(direction, low, high, p.take_profit_front_run_pct)
    wick_table = inputs.wick_down if direction == "long" else inputs.wick_up
    wick = num(wick_table[i, t]) if t >= 0 else None
    wick_pct = wick if wick is not None and wick > 0 else p.stop_default_wick_pct
    side = 1 if direction == "long" else -1
    c = clusters.merge(inputs.levels.prices[i, t][None, :], inputs.levels.values[i, t][None, :],
                       [price], p.merge_pct)  # fmt: skip
    k = clusters.next_opposite(c, 0, side, price)
    # beyond the whole opposite cluster: its far edge (low for a long's stop, high for a short's)
    far = None if k < 0 else float(c.price_low[k] if side > 0 else c.price_high[k])
    stop = levels.stop_loss(direction, entry, wick_pct, far, p.stop_beyond_pct)
    detail = clean({
        "entry_mode": p.entry_mode, "entry_beyond_pct": p.entry_beyond_pct,
        "take_profit_front_run_pct": p.take_profit_front_run_pct,
        "target": {"low": low, "high": high},
        "wick_pct": wick_pct, "wick_source": "pattern" if wick_pct == wick else "default",
        "wick_stop": levels.wick_stop(direction, entry, wick_pct),
        "next_cluster": None if k < 0 else {
            "low": c.price_low[k], "high": c.price_high[k], "value_usd": c.value[k]},
        "cluster_stop": None if far is None else levels.cluster_stop(direction, far, p.stop_beyond_pct),
        "stop_beyond_pct": p.stop_beyond_pct,
    })  # fmt: skip
    return TradePlan(entry, stop, tp, detail)


def signal_id(cycle_id: str, symbol: str) -> uuid.UUID:
    """Deterministic: a re-run of the same cycle can never make a second signal."""
    return uuid.uuid5(SIGNAL_NAMESPACE, f"{cycle_id}:{symbol}")
