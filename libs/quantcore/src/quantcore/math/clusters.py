"""Merging adjacent heatmap levels into clusters, one side of the price at a time.

Levels are sorted by price; a new cluster starts where the gap to the previous level exceeds
`merge_pct` percent of the previous level's price, or where the side changes (a cluster never
straddles the current price). Vectorised over any number of rows (coin × timeframe): padded
NaN prices are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - conventional short alias


@dataclass(frozen=True)
class Clusters:
    """Flat list of clusters of many rows. `row` says which input row each belongs to."""

    row: I
    side: NDArray[np.int8]  # +1 shorts (above price), -1 longs (below)
    price_low: F
    price_high: F
    value: F
    level_count: I

    @property
    def center(self) -> F:
        return np.asarray((self.price_low + self.price_high) / 2.0)

    def __len__(self) -> int:
        return int(self.row.size)


def merge(
    prices: ArrayLike, values: ArrayLike, price: ArrayLike, merge_pct: float = 0.5
) -> Clusters:
    """Cluster the levels of each row. prices/values: (rows, levels); price: (rows,).

    Works on the compacted valid levels in row order: clusters are then contiguous runs, so
    their sums are one `reduceat` and row boundaries come from per-row counts. Heatmaps arrive
    sorted by price; other input is sorted here (within each row).
    """
    p = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    rows = p.shape[0]
    cur = np.broadcast_to(np.asarray(price, dtype=np.float64), (rows,))
    with np.errstate(invalid="ignore"):
        valid = (v > 0) & (p != cur[:, None]) & np.isfinite(p)
    counts = np.count_nonzero(valid, axis=1)
    pv = p[valid]
    vv = v[valid]
    n = pv.size
    if n == 0:
        empty_f = np.zeros(0)
        empty_i = np.zeros(0, dtype=np.int64)
        return Clusters(empty_i, np.zeros(0, dtype=np.int8), empty_f, empty_f, empty_f, empty_i)
    ends = np.cumsum(counts)
    starts = np.zeros(n + 1, dtype=bool)
    starts[ends - counts] = True  # the first level of every row
    starts = starts[:n]
    if not bool(np.all(starts[1:] | (pv[1:] >= pv[:-1]))):
        order = np.lexsort((pv, np.repeat(np.arange(rows), counts)))
        pv, vv = pv[order], vv[order]
    above = pv > np.repeat(cur, counts)
    # a new cluster where the side changes or the gap exceeds merge_pct % of the lower price
    starts[1:] |= (above[1:] != above[:-1]) | (pv[1:] > pv[:-1] * (1.0 + merge_pct / 100.0))
    first = np.flatnonzero(starts)
    last = np.append(first[1:], n) - 1
    return Clusters(
        row=np.searchsorted(ends, first, side="right").astype(np.int64),
        side=np.where(above[first], 1, -1).astype(np.int8),
        price_low=pv[first],
        price_high=pv[last],
        value=np.add.reduceat(vv, first),
        level_count=(last - first + 1).astype(np.int64),
    )


def side_totals(clusters: Clusters, rows: int) -> tuple[F, F]:
    """(shorts_above, longs_below) per row, summed from the clusters: equal to
    imbalance.side_totals over the same levels, without another pass over them."""
    shorts = np.bincount(
        clusters.row, weights=np.where(clusters.side > 0, clusters.value, 0.0), minlength=rows
    )
    longs = np.bincount(
        clusters.row, weights=np.where(clusters.side < 0, clusters.value, 0.0), minlength=rows
    )
    return shorts.astype(np.float64), longs.astype(np.float64)


def largest(clusters: Clusters, rows: int, side: ArrayLike) -> I:
    """Index (into clusters) of the largest cluster of each row on the wanted side (+1/−1),
    or −1 where that row has none."""
    want = np.broadcast_to(np.asarray(side, dtype=np.int8), (rows,))
    best = np.full(rows, -1, dtype=np.int64)
    idx = np.nonzero(clusters.side == want[clusters.row])[0]
    if idx.size == 0:
        return best
    # per row ascending by value (ties: by price, which is the clusters' order): take the last
    idx = idx[np.lexsort((clusters.value[idx], clusters.row[idx]))]
    row_sorted = clusters.row[idx]
    last = np.append(row_sorted[1:] != row_sorted[:-1], True)
    best[row_sorted[last]] = idx[last]
    return best


def next_opposite(clusters: Clusters, row: int, side: int, price: float) -> int:
    """The nearest cluster on the other side of the price (where the stop goes), or −1."""
    sel = np.nonzero((clusters.row == row) & (clusters.side == -side))[0]
    if sel.size == 0:
        return -1
    edge = np.where(side > 0, clusters.price_high[sel], clusters.price_low[sel])
    return int(sel[np.argmin(np.abs(edge - price))])
