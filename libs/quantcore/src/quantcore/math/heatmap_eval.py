"""Comparing an estimated heatmap with the true one (issue 14, item 4): pure functions.

A heatmap's *clusters* here are its peaks: the levels are summed onto a log-spaced grid of
`bin_pct` wide bins around the current price, and a cluster is a bin holding more than the
bin below it and at least as much as the bin above it (a local maximum); the top `top` by
value, both sides together, are the heatmap's top clusters. (Merging levels by gaps, as the
scanner does, chains a dense heatmap into a few blobs tens of percent wide; peaks keep the
places where value concentrates, which is what a trader aims at.)

- precision: share of the estimate's top clusters within ±`tol_pct` of a true top cluster;
- recall: share of the true top clusters within ±`tol_pct` of an estimated top cluster;
- rank correlation: Spearman's rho between the true top clusters' sizes and the estimate's
  value within ±`tol_pct` of each (how well the estimate orders them);
- largest-cluster error: |estimated largest cluster's price / true largest's − 1|, percent.

Against realised liquidations (simulated or real alike, `realised`): of the predicted
clusters price reached afterwards, the share that saw liquidations recorded within ±tol
within an hour (precision), and the share of recorded liquidation value within ±tol of a
predicted cluster (recall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]


@dataclass(frozen=True)
class Peaks:
    price: F  # by value, largest first
    value: F


@dataclass(frozen=True)
class RowScore:
    """One coin × timeframe. NaN where undefined (no cluster on one side of the comparison)."""

    precision: float
    recall: float
    rank_corr: float
    largest_err_pct: float


def binned(prices: ArrayLike, values: ArrayLike, price: float, bin_pct: float, band: float) -> tuple[F, F]:  # fmt: skip
    """(bin centre prices, summed values) on a log grid of `bin_pct` around `price`, from
    price·(1 − band) to price·(1 + band)."""
    step = math.log1p(bin_pct / 100.0)
    p = np.asarray(prices, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    lo = math.floor(math.log1p(-band) / step)
    hi = math.ceil(math.log1p(band) / step)
    keep = (p > 0) & (v > 0) & np.isfinite(p) & np.isfinite(v)
    k = np.round(np.log(p[keep] / price) / step).astype(np.int64) - lo
    inside = (k >= 0) & (k <= hi - lo)
    sums = np.bincount(k[inside], weights=v[keep][inside], minlength=hi - lo + 1)
    centres = price * np.exp((np.arange(hi - lo + 1) + lo) * step)
    return centres, sums.astype(np.float64)


def peaks(
    prices: ArrayLike, values: ArrayLike, price: float, *, bin_pct: float = 0.5,
    band: float = 0.35, top: int = 5,
) -> Peaks:  # fmt: skip
    """The top clusters (local maxima of the binned values), largest first."""
    centres, sums = binned(prices, values, price, bin_pct, band)
    left = np.concatenate(([0.0], sums[:-1]))
    right = np.concatenate((sums[1:], [0.0]))
    idx = np.nonzero((sums > 0) & (sums > left) & (sums >= right))[0]
    order = idx[np.argsort(-sums[idx], kind="stable")][:top]
    return Peaks(price=centres[order], value=sums[order])


def within(a: ArrayLike, b: ArrayLike, tol_pct: float) -> NDArray[np.bool_]:
    """For each price in a: is some price of b within ±tol_pct percent of it?"""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        return np.zeros(x.size, dtype=bool)
    rel = np.abs(y[None, :] / x[:, None] - 1.0)
    return np.asarray((rel <= tol_pct / 100.0 + 1e-12).any(axis=1))


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rho (average ranks for ties); NaN for fewer than 3 points or a constant."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return math.nan
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def _ranks(x: F) -> F:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size, dtype=np.float64)
    _, inv = np.unique(x, return_inverse=True)
    sums = np.bincount(inv, weights=ranks)
    counts = np.bincount(inv)
    return np.asarray(sums[inv] / counts[inv])


def score_row(
    est_prices: ArrayLike, est_values: ArrayLike, true_prices: ArrayLike, true_values: ArrayLike,
    price: float, *, bin_pct: float = 0.5, band: float = 0.35, top: int = 5, tol_pct: float = 1.0,
) -> RowScore:  # fmt: skip
    est = peaks(est_prices, est_values, price, bin_pct=bin_pct, band=band, top=top)
    true = peaks(true_prices, true_values, price, bin_pct=bin_pct, band=band, top=top)
    precision = float(within(est.price, true.price, tol_pct).mean()) if est.price.size else math.nan
    recall = float(within(true.price, est.price, tol_pct).mean()) if true.price.size else math.nan
    centres, sums = binned(est_prices, est_values, price, bin_pct, band)
    near = np.abs(centres[None, :] / true.price[:, None] - 1.0) <= tol_pct / 100.0 + 1e-12
    est_at_true = (np.where(near, sums[None, :], 0.0)).max(axis=1, initial=0.0)
    rank_corr = spearman(true.value, est_at_true)
    if est.price.size and true.price.size:
        err = abs(float(est.price[0]) / float(true.price[0]) - 1.0) * 100.0
    else:
        err = math.nan
    return RowScore(precision, recall, rank_corr, err)


@dataclass(frozen=True)
class Summary:
    rows: int
    precision_pct: float  # mean over rows with an estimated cluster
    recall_pct: float  # mean over rows with a true cluster
    rank_corr: float  # mean over rows where defined
    largest_err_pct: float  # median over rows where defined

    @property
    def f1_pct(self) -> float:
        p, r = self.precision_pct, self.recall_pct
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def summarise(scores: list[RowScore]) -> Summary:
    def arr(name: str) -> F:
        a = np.array([getattr(s, name) for s in scores], dtype=np.float64)
        return a[np.isfinite(a)]

    def mean(a: F) -> float:
        return float(a.mean()) if a.size else math.nan

    return Summary(
        rows=len(scores),
        precision_pct=100.0 * mean(arr("precision")),
        recall_pct=100.0 * mean(arr("recall")),
        rank_corr=mean(arr("rank_corr")),
        largest_err_pct=float(np.median(arr("largest_err_pct"))) if arr("largest_err_pct").size else math.nan,
    )  # fmt: skip


# --- against realised liquidations -----------------------------------------------------------


def reach_times(cluster_price: ArrayLike, start_s: ArrayLike, low: ArrayLike, high: ArrayLike) -> F:  # fmt: skip
    """For each cluster price, the start of the first candle whose range [low, high] holds it
    (NaN: price never got there). Candles in time order."""
    c = np.asarray(cluster_price, dtype=np.float64)[:, None]
    lo = np.asarray(low, dtype=np.float64)[None, :]
    hi = np.asarray(high, dtype=np.float64)[None, :]
    t = np.asarray(start_s, dtype=np.float64)
    if t.size == 0 or c.size == 0:
        return np.full(c.shape[0], np.nan)
    inside = (lo <= c) & (c <= hi)
    first = inside.argmax(axis=1)
    return np.asarray(np.where(inside.any(axis=1), t[first], np.nan))


@dataclass(frozen=True)
class Realised:
    """Counts over any number of coins; combine by adding."""

    reached: int  # predicted clusters price reached
    hit: int  # of them, with liquidations recorded within ±tol within the window after
    value_in: float  # recorded liquidation value within ±tol of a predicted cluster
    value_total: float  # all recorded liquidation value

    def __add__(self, other: Realised) -> Realised:
        return Realised(
            self.reached + other.reached, self.hit + other.hit,
            self.value_in + other.value_in, self.value_total + other.value_total,
        )  # fmt: skip

    @property
    def precision_pct(self) -> float:
        return 100.0 * self.hit / self.reached if self.reached else math.nan

    @property
    def recall_pct(self) -> float:
        return 100.0 * self.value_in / self.value_total if self.value_total > 0 else math.nan


def realised(
    cluster_price: ArrayLike, reached_at: ArrayLike, liq_time_s: ArrayLike, liq_price: ArrayLike,
    liq_value: ArrayLike, *, tol_pct: float = 1.0, window_s: float = 3600.0,
) -> Realised:  # fmt: skip
    """One coin's predicted clusters against the liquidations recorded after the prediction:
    precision counts the clusters price reached that saw liquidations within ±tol_pct within
    `window_s` of being reached; recall is the share of liquidation value within ±tol_pct of
    any predicted cluster."""
    c = np.asarray(cluster_price, dtype=np.float64)
    at = np.asarray(reached_at, dtype=np.float64)
    lt = np.asarray(liq_time_s, dtype=np.float64)
    lp = np.asarray(liq_price, dtype=np.float64)
    lv = np.asarray(liq_value, dtype=np.float64)
    tol = tol_pct / 100.0 + 1e-12
    near = np.abs(lp[None, :] / c[:, None] - 1.0) <= tol  # [clusters, liquidations]
    reached = np.isfinite(at)
    soon = (lt[None, :] >= at[:, None]) & (lt[None, :] <= at[:, None] + window_s)
    hit = reached & (near & soon).any(axis=1)
    inside = near.any(axis=0) if c.size else np.zeros(lp.size, dtype=bool)
    return Realised(
        reached=int(reached.sum()), hit=int(hit.sum()),
        value_in=float(lv[inside].sum()), value_total=float(lv.sum()),
    )  # fmt: skip
