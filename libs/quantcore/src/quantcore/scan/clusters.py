"""One cluster scan: the latest heatmaps of many coins × timeframes merged into clusters
(quantcore.math.clusters), each timeframe's target (largest cluster on its bias side), and the
rows they become (`liquidation_clusters`, `cluster_targets`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantcore.math import clusters
from quantcore.math.ranking import cluster_size_pct
from quantcore.math.values import num
from quantcore.store.clusters import ClusterValues
from quantcore.store.levels import LatestLevels

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - conventional short alias
SIDE_NAME = {1: "short", -1: "long"}  # liquidated side: shorts sit above price, longs below


@dataclass(frozen=True)
class ClusterScan:
    levels: LatestLevels
    price: F  # (C,) current price per coin (NaN: unknown, coin skipped)
    clusters: clusters.Clusters  # rows are coin * T + tf
    ratio: F  # (C * T,) imbalance of each timeframe on its own
    target: I  # (C * T,) index into clusters of the row's target, −1 when none

    @property
    def n_tf(self) -> int:
        return len(self.levels.timeframes)

    def row(self, coin: int, tf: int) -> int:
        return coin * self.n_tf + tf

    def largest_per_coin(self) -> F:
        """Per coin, its largest target value over the timeframes (0 when none)."""
        n_coins = len(self.levels.symbols)
        vals = np.where(self.target >= 0, self.clusters.value[np.maximum(self.target, 0)], 0.0)
        return np.asarray(vals.reshape(n_coins, self.n_tf).max(axis=1) if vals.size else vals)

    def snapshot_typical(self) -> F:
        """Per coin, the median over its timeframes of each timeframe's target value: the
        typical cluster when the coin has too little history (NaN without any target)."""
        n_coins = len(self.levels.symbols)
        vals = np.where(self.target >= 0, self.clusters.value[np.maximum(self.target, 0)], np.nan)
        return clusters.snapshot_typical(vals.reshape(n_coins, self.n_tf))


def scan(levels: LatestLevels, price: F, merge_pct: float) -> ClusterScan:
    n_coins, n_tf, n_lv = levels.prices.shape
    cur = np.repeat(np.asarray(price, dtype=np.float64), n_tf)
    known = np.isfinite(cur)[:, None]  # a coin without a price has no sides: skipped
    p = np.where(known, levels.prices.reshape(n_coins * n_tf, n_lv), np.nan)
    v = np.where(known, levels.values.reshape(n_coins * n_tf, n_lv), 0.0)
    c, r, target = clusters.row_targets(p, v, cur, merge_pct)  # neutral rows: no target
    return ClusterScan(levels, np.asarray(price, dtype=np.float64), c, r, target)


def cluster_values(s: ClusterScan, typical: F) -> ClusterValues:
    c = s.clusters
    coin = c.row // s.n_tf
    typ = np.asarray(typical, dtype=np.float64)
    size = np.where(typ[coin] > 0, cluster_size_pct(c.value, typ[coin]), np.nan)
    centre = c.center
    ref = s.price[coin]
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = (centre - ref) / ref * 100.0
    rows, group = np.unique(c.row, return_inverse=True)
    return ClusterValues(
        snapshots=[s.levels.snapshots[divmod(r, s.n_tf)] for r in rows.tolist()],
        group=group.astype(np.int64).reshape(-1), side=c.side, price_low=c.price_low,
        price_high=c.price_high, center=centre, value=c.value, level_count=c.level_count,
        ref_price=ref, distance_pct=distance, size_pct=size,
    )  # fmt: skip


def _nums(x: F) -> list[float | None]:
    return [num(v) for v in x.tolist()]


def cluster_rows(
    s: ClusterScan, at: datetime, typical: F, scanner: str, version: str
) -> list[tuple[Any, ...]]:
    """The rows of one scan, as tuples (quantcore.store.clusters.insert_clusters writes the
    same rows from the ClusterValues arrays directly)."""
    v = cluster_values(s, typical)
    snaps = [v.snapshots[g] for g in v.group.tolist()]
    return [
        (at, sn.symbol, sn.timeframe, SIDE_NAME[side], lo, hi, ce, va, n, ref, dist, size,
         sn.source, sn.time, scanner, version, sn.heatmap_source)
        for sn, side, lo, hi, ce, va, n, ref, dist, size in zip(
            snaps, v.side.tolist(), v.price_low.tolist(), v.price_high.tolist(),
            v.center.tolist(), v.value.tolist(), v.level_count.tolist(), _nums(v.ref_price),
            _nums(v.distance_pct), _nums(v.size_pct), strict=True,
        )
    ]  # fmt: skip


def target_rows(
    s: ClusterScan, bucket: datetime, at: datetime, scanner: str, version: str
) -> list[tuple[Any, ...]]:
    """One cluster_targets row per coin × timeframe with a target (the sample of `bucket`)."""
    c = s.clusters
    rows: list[tuple[Any, ...]] = []
    for row in np.flatnonzero(s.target >= 0):
        k = int(s.target[row])
        coin, tf = divmod(int(row), s.n_tf)
        snap = s.levels.snapshots[(coin, tf)]
        above = int(c.side[k]) > 0
        rows.append((
            bucket, snap.symbol, snap.timeframe, at, snap.time, SIDE_NAME[int(c.side[k])],
            float(c.price_low[k]), float(c.price_high[k]), float(c.value[k]),
            float(s.price[coin]), float(c.price_low[k] if above else c.price_high[k]),
            num(s.ratio[row]), scanner, version, snap.heatmap_source,
        ))  # fmt: skip
    return rows
