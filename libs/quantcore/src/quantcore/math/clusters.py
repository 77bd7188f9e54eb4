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

from quantcore.math import imbalance

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


def _empty() -> Clusters:
    f = np.zeros(0)
    i = np.zeros(0, dtype=np.int64)
    return Clusters(i, np.zeros(0, dtype=np.int8), f, f, f, i)


BLOCK_SLOTS = 1 << 17  # level slots merged per block: its temporaries stay in the CPU cache


def merge(
    prices: ArrayLike, values: ArrayLike, price: ArrayLike, merge_pct: float = 0.5
) -> Clusters:
    """Cluster the levels of each row. prices/values: (rows, levels); price: (rows,).

    Rows are independent, so they are merged in blocks of about BLOCK_SLOTS slots: every
    step is a pass over arrays, and a block's arrays (~1 MB each) stay in the CPU cache where
    the whole universe's (500 coins × 9 timeframes × 400 slots, 14 MB each) would stream
    from memory at every pass — a third of the time. The result does not depend on the
    blocking (same clusters, same sums, same order).
    """
    p = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    rows, width = p.shape
    cur = np.broadcast_to(np.asarray(price, dtype=np.float64), (rows,))
    step = max(1, BLOCK_SLOTS // max(width, 1))
    if rows <= step:
        return _merge_rows(p, v, cur, merge_pct)
    parts = [
        _merge_rows(p[r : r + step], v[r : r + step], cur[r : r + step], merge_pct)
        for r in range(0, rows, step)
    ]
    return Clusters(
        row=np.concatenate([c.row + r for c, r in zip(parts, range(0, rows, step), strict=True)]),
        side=np.concatenate([c.side for c in parts]),
        price_low=np.concatenate([c.price_low for c in parts]),
        price_high=np.concatenate([c.price_high for c in parts]),
        value=np.concatenate([c.value for c in parts]),
        level_count=np.concatenate([c.level_count for c in parts]),
    )


def _merge_rows(p: F, v: F, cur: F, merge_pct: float) -> Clusters:
    """merge() of one block of rows.

    Works on the compacted levels (value > 0, finite price) in row order: clusters are then
    contiguous runs, so their sums are one `reduceat` and row boundaries come from per-row
    counts. Heatmaps arrive sorted by price; other input is sorted here (within each row).

    A level exactly at the price belongs to neither side. It is kept while compacting (one
    comparison on the compacted levels instead of one over every padded slot) but made a
    cluster of its own, dropped at the end: in price order the levels before it are below the
    price and those after it above, so they are split there anyway — the other clusters, their
    members and their sums are the same as with the level removed beforehand.
    """
    rows = p.shape[0]
    valid = v > 0  # NaN values and the zero padding drop out
    counts = np.count_nonzero(valid, axis=1)
    pv = p[valid]
    if not bool(np.isfinite(pv).all()):  # a NaN / infinite price with a value: rare, recompact
        valid &= np.isfinite(p)
        counts = np.count_nonzero(valid, axis=1)
        pv = p[valid]
    vv = v[valid]
    n = pv.size
    if n == 0:
        return _empty()
    ends = np.cumsum(counts)
    starts = np.zeros(n + 1, dtype=bool)
    starts[ends - counts] = True  # the first level of every row
    starts = starts[:n]
    descending = np.flatnonzero(pv[1:] < pv[:-1])  # allowed only where a new row begins
    if descending.size and not bool(starts[1:][descending].all()):
        order = np.lexsort((pv, np.repeat(np.arange(rows), counts)))
        pv, vv = pv[order], vv[order]
    cur_lv = np.repeat(cur, counts)
    above = pv > cur_lv
    # a new cluster where the side changes or the gap exceeds merge_pct % of the lower price
    starts[1:] |= (above[1:] != above[:-1]) | (pv[1:] > pv[:-1] * (1.0 + merge_pct / 100.0))
    at_price = pv == cur_lv
    some_at_price = bool(at_price.any())
    if some_at_price:  # each its own cluster (the level after it is above: a new one anyway)
        starts |= at_price
    first = np.flatnonzero(starts)
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    last[-1] = n - 1
    value = np.add.reduceat(vv, first)
    if some_at_price:
        keep = ~at_price[first]
        first, last, value = first[keep], last[keep], value[keep]
    return Clusters(
        row=np.searchsorted(ends, first, side="right").astype(np.int64),
        side=np.where(above[first], 1, -1).astype(np.int8),
        price_low=pv[first],
        price_high=pv[last],
        value=value,
        level_count=last - first + 1,
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


def largest_per_group(group: I, value: F, wanted: NDArray[np.bool_], n_groups: int) -> I:
    """Per group, the index of its largest wanted value (ties: the last one), −1 where a group
    has none. `group` must be non-decreasing (clusters come in row order): a segmented max,
    no sort."""
    best = np.full(n_groups, -1, dtype=np.int64)
    if group.size == 0:
        return best
    key = np.where(wanted, value, -np.inf)
    seg = np.flatnonzero(np.append(True, group[1:] != group[:-1]))  # where each group begins
    top = np.repeat(np.maximum.reduceat(key, seg), np.diff(np.append(seg, group.size)))
    cand = np.flatnonzero(wanted & (key == top))
    if cand.size:
        g = group[cand]
        last = np.append(g[1:] != g[:-1], True)
        best[g[last]] = cand[last]
    return best


def largest(clusters: Clusters, rows: int, side: ArrayLike) -> I:
    """Index (into clusters) of the largest cluster of each row on the wanted side (+1/−1),
    or −1 where that row has none (ties: the higher-priced one, the later in the clusters)."""
    want = np.broadcast_to(np.asarray(side, dtype=np.int8), (rows,))
    return largest_per_group(
        clusters.row, clusters.value, clusters.side == want[clusters.row], rows
    )


def next_opposite(clusters: Clusters, row: int, side: int, price: float) -> int:
    """The nearest cluster on the other side of the price (where the stop goes), or −1."""
    sel = np.nonzero((clusters.row == row) & (clusters.side == -side))[0]
    if sel.size == 0:
        return -1
    edge = np.where(side > 0, clusters.price_high[sel], clusters.price_low[sel])
    return int(sel[np.argmin(np.abs(edge - price))])


def row_targets(
    prices: ArrayLike, values: ArrayLike, price: ArrayLike, merge_pct: float
) -> tuple[Clusters, F, I]:
    """The cluster scanner's view of each row (coin × timeframe) on its own: its clusters, its
    imbalance ratio and its target (index into the clusters of the largest cluster on its bias
    side; −1 when neutral or none). prices/values: (rows, levels), price: (rows,)."""
    p = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    cur = np.asarray(price, dtype=np.float64)
    c = merge(p, v, cur, merge_pct)
    shorts, longs = imbalance.side_totals(p, v, cur)
    r = imbalance.ratio(shorts, longs)
    side = np.where(r > 0.5, 1, -1).astype(np.int8)
    target = np.where(r == 0.5, -1, largest(c, p.shape[0], side)).astype(np.int64)
    return c, r, target


def snapshot_typical(target_value: ArrayLike) -> F:
    """Per coin, the median over its timeframes of each timeframe's target value (NaN where a
    timeframe has none): the typical cluster when the coin has too little history (NaN
    without any target). target_value: (coins, timeframes)."""
    grid = np.atleast_2d(np.asarray(target_value, dtype=np.float64))
    k = np.isfinite(grid).sum(axis=1)
    ranked = np.sort(np.where(np.isfinite(grid), grid, np.inf), axis=1)  # the unknown last
    rows = np.flatnonzero(k > 0)
    lo = ranked[rows, (k[rows] - 1) // 2]
    hi = ranked[rows, k[rows] // 2]
    out = np.full(grid.shape[0], np.nan)
    out[rows] = (lo + hi) / 2  # the median of the known values (np.nanmedian's)
    return out
