"""The no-lookahead check: plant different data just after bar t (a price jump, an OI spike,
a volume burst, and in every heatmap refresh stamped after bar t's close a huge liquidation
cluster on each side of the price) and compare. Any decision at or before t that changes
read the future. The backtester runs it on a plug-in before trusting it; the suite runs it on
every built-in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantcore.strategies.base import Bars, Strategy, prefetch

F = NDArray[np.float64]
CLUSTER_USD = 1e12  # a planted cluster: larger than anything real
CLUSTER_AT = (0.97, 1.03)  # planted at these multiples of the refresh's close, below and above

PLANTS = (("price up", 1.25, 5.0), ("price down", 0.8, 0.2))  # (name, price ×, OI/volume ×)


def plant_future(bars: Bars, t: int, price_x: float, flow_x: float) -> Bars:
    """Bars with everything after bar t changed: prices scaled, volume and OI scaled."""

    def after(x: np.ndarray, k: float) -> np.ndarray:
        y = x.copy()
        y[t + 1 :] *= k
        return y

    heatmap = bars.heatmap
    if heatmap is not None:
        first = heatmap.index_asof(int(bars.close_s[t]))
        first = 0 if first is None else first + 1  # refreshes stamped after bar t's close
        ref = float(bars.close[t]) * price_x
        p, v = heatmap.prices, heatmap.values
        heatmap = replace(
            heatmap, prices=_Planted(p, v, first, ref, 0), values=_Planted(p, v, first, ref, 1)
        )
    return replace(
        bars, heatmap=heatmap, open=after(bars.open, price_x), high=after(bars.high, price_x),
        low=after(bars.low, price_x), close=after(bars.close, price_x),
        volume=after(bars.volume, flow_x),
        open_interest=None if bars.open_interest is None else after(bars.open_interest, flow_x),
    )  # fmt: skip


def _plant(prices: F, values: F, ref: float) -> tuple[F, F]:
    """A huge cluster added below and above `ref` (in every timeframe row), kept by price."""
    p = np.atleast_2d(np.asarray(prices, dtype=np.float64))
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    add_p = np.broadcast_to(np.array([ref * m for m in CLUSTER_AT]), (p.shape[0], len(CLUSTER_AT)))
    add_v = np.full(add_p.shape, CLUSTER_USD)
    p2, v2 = np.concatenate([p, add_p], axis=1), np.concatenate([v, add_v], axis=1)
    order = np.argsort(p2, axis=1, kind="stable")  # NaN padding stays last
    p2, v2 = np.take_along_axis(p2, order, axis=1), np.take_along_axis(v2, order, axis=1)
    if np.asarray(prices).ndim == 1:
        return p2[0], v2[0]
    return p2, v2


class _Planted(Sequence[F]):
    """One field (0 prices, 1 values) of the refreshes, planted from refresh `first` on."""

    def __init__(
        self, prices: Sequence[F], values: Sequence[F], first: int, ref: float, field: int
    ) -> None:
        self.prices, self.values, self.first, self.ref, self.field = (
            prices,
            values,
            first,
            ref,
            field,
        )

    def __len__(self) -> int:
        return len(self.prices)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        kk = k if k >= 0 else k + len(self)
        if kk < self.first:
            return (self.prices, self.values)[self.field][kk]
        return _plant(self.prices[kk], self.values[kk], self.ref)[self.field]


def lookahead_violations(strategy: Strategy[Any], bars: Bars, times: list[int]) -> list[str]:
    """For each t, the decisions at bars ≤ t that change when the future after t is
    replaced; empty when the strategy is causal on this tape."""
    prefetch(strategy, [bars])
    base = strategy.signals(bars)
    out: list[str] = []
    for t in times:
        for name, px, fx in PLANTS:
            planted = plant_future(bars, t, px, fx)
            prefetch(strategy, [planted])
            other = strategy.signals(planted)
            before_a = [p for p in base.plans or () if p.bar <= t]
            before_b = [p for p in other.plans or () if p.bar <= t]
            if not _same_plans(before_a, before_b):
                out.append(f"t={t} ({name}): a plan at a bar ≤ t changed — the strategy reads "
                           "data after t")  # fmt: skip
            for field in ("entry", "exit", "sl_pct", "tp_pct"):
                a, b = getattr(base, field), getattr(other, field)
                if (a is None) != (b is None):
                    out.append(f"t={t} ({name}): {field} appears only with the planted future")
                    continue
                if a is None:
                    continue
                diff = np.flatnonzero(
                    ~((a[: t + 1] == b[: t + 1]) | (np.isnan(a[: t + 1]) & np.isnan(b[: t + 1])))
                    if a.dtype.kind == "f"
                    else a[: t + 1] != b[: t + 1]
                )
                if diff.size:
                    out.append(
                        f"t={t} ({name}): {field} changed at bar {int(diff[0])}"
                        f" ({diff.size} bar(s) ≤ t) — the strategy reads data after t"
                    )
    return out


def _same_plans(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if (x.bar, x.side, x.stop_loss, x.take_profit, x.leverage) != (
            y.bar,
            y.side,
            y.stop_loss,
            y.take_profit,
            y.leverage,
        ) or not (
            np.array_equal(x.prices, y.prices)
            and np.array_equal(x.qty_per_equity, y.qty_per_equity)
        ):
            return False
    return True
