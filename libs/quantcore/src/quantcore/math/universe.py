"""One evaluation of the whole universe: imbalance + clusters + score + ranking, vectorised.

Inputs are padded arrays over coins × timeframes × levels (NaN price = no level). The
imbalance aggregates the nine timeframes with weights; the target is the largest cluster on
the bias side across all timeframes; its size is judged against the coin's typical cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantcore.math import clusters, imbalance
from quantcore.math.ranking import ScoreWeights, cluster_size_pct, rank, score

F = NDArray[np.float64]
DEFAULT_WEIGHTS = ScoreWeights()


@dataclass(frozen=True)
class UniverseEvaluation:
    symbols: list[str]
    ratio: F  # shorts / (shorts + longs), weighted over timeframes, 0..1
    direction: list[imbalance.Direction]
    dominant: F  # share of the dominant side (0.5..1): the imbalance term of the score
    target_timeframe: NDArray[np.int64]  # index into the timeframes, −1 when none
    target_low: F
    target_high: F
    target_value: F
    size_pct: F
    score: F
    order: list[int]  # indices of symbols from best to worst (neutral coins last)
    shorts_above: F  # (C, T) per timeframe, unweighted
    longs_below: F  # (C, T)
    success: F  # (C,) the success rate that went into the score


def evaluate(
    symbols: list[str],
    prices: ArrayLike,  # (C, T, L)
    values: ArrayLike,  # (C, T, L)
    current: ArrayLike,  # (C,)
    tf_weights: ArrayLike,  # (T,)
    typical: ArrayLike,  # (C,) typical cluster value per coin (USD)
    success: ArrayLike,  # (C,) success rate 0..1, or (C, T): the target timeframe's is used
    merge_pct: float = 0.5,
    weights: ScoreWeights = DEFAULT_WEIGHTS,
    neutral_band: float = 0.0,
) -> UniverseEvaluation:
    p = np.asarray(prices, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n_coins, n_tf, n_lv = p.shape
    # clusters of every coin × timeframe at once (rows = C*T); the side totals of the
    # imbalance are the clusters' sums, so the levels are read only once
    c = clusters.merge(p.reshape(n_coins * n_tf, n_lv), v.reshape(n_coins * n_tf, n_lv),
                       np.repeat(cur, n_tf), merge_pct)  # fmt: skip
    shorts, longs = clusters.side_totals(c, n_coins * n_tf)
    r = imbalance.weighted_ratio(
        shorts.reshape(n_coins, n_tf), longs.reshape(n_coins, n_tf), tf_weights
    )
    direction = [imbalance.direction(float(x), neutral_band) for x in r]
    side = np.array([1 if d == "long" else -1 for d in direction], dtype=np.int8)
    dominant = np.maximum(r, 1 - r)

    # the target: the coin's largest cluster on its bias side over all timeframes (ties: the
    # last in row order); clusters come coin by coin, so a segmented max finds it
    coin_of = c.row // n_tf
    best = clusters.largest_per_group(coin_of, c.value, c.side == side[coin_of], n_coins)
    has = best >= 0
    pick = np.where(has, best, 0)
    nan = np.full(n_coins, np.nan)
    target_low = np.where(has, c.price_low[pick] if len(c) else nan, np.nan)
    target_high = np.where(has, c.price_high[pick] if len(c) else nan, np.nan)
    target_value = np.where(has, c.value[pick] if len(c) else nan, 0.0)
    target_tf = np.where(has, (c.row[pick] % n_tf) if len(c) else -1, -1).astype(np.int64)

    size = cluster_size_pct(target_value, typical)
    succ = np.asarray(success, dtype=np.float64)
    if succ.ndim == 2:  # per timeframe: the rate of the timeframe holding the target
        picked = succ[np.arange(n_coins), np.maximum(target_tf, 0)]
        succ = np.where(target_tf >= 0, picked, 0.0)
    succ = np.nan_to_num(np.broadcast_to(succ, (n_coins,)), nan=0.0)
    s = score(dominant, size, succ, weights)
    s = np.where(np.array(direction) == "neutral", -np.inf, s)
    return UniverseEvaluation(
        symbols=symbols, ratio=r, direction=direction, dominant=dominant,
        target_timeframe=target_tf, target_low=target_low, target_high=target_high,
        target_value=target_value, size_pct=size, score=s, order=rank(symbols, s),
        shorts_above=shorts.reshape(n_coins, n_tf), longs_below=longs.reshape(n_coins, n_tf),
        success=succ,
    )  # fmt: skip


def boosted(ev: UniverseEvaluation, boost: ArrayLike) -> UniverseEvaluation:
    """The evaluation with each coin's score × (1 + boost) — the Polymarket hybrid boost
    (POLY_HYBRID_BOOST for a coin whose linked market fired a hybrid signal) — re-ordered by
    the same rule. A boost of 0 changes nothing; a neutral coin (score −inf) stays last."""
    b = np.nan_to_num(np.broadcast_to(np.asarray(boost, dtype=np.float64), ev.score.shape))
    s = np.where(np.isfinite(ev.score), ev.score * (1.0 + np.maximum(b, 0.0)), ev.score)
    return replace(ev, score=s, order=rank(ev.symbols, s))
