"""The no-lookahead check: plant different data just after bar t (a price jump, an OI spike,
a volume burst) and compare. Any decision at or before t that changes read the future. The
backtester runs it on a plug-in before trusting it; the suite runs it on every built-in."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from quantcore.strategies.base import Bars, Strategy

PLANTS = (("price up", 1.25, 5.0), ("price down", 0.8, 0.2))  # (name, price ×, OI/volume ×)


def plant_future(bars: Bars, t: int, price_x: float, flow_x: float) -> Bars:
    """Bars with everything after bar t changed: prices scaled, volume and OI scaled."""

    def after(x: np.ndarray, k: float) -> np.ndarray:
        y = x.copy()
        y[t + 1 :] *= k
        return y

    return replace(
        bars, open=after(bars.open, price_x), high=after(bars.high, price_x),
        low=after(bars.low, price_x), close=after(bars.close, price_x),
        volume=after(bars.volume, flow_x),
        open_interest=None if bars.open_interest is None else after(bars.open_interest, flow_x),
    )  # fmt: skip


def lookahead_violations(strategy: Strategy[Any], bars: Bars, times: list[int]) -> list[str]:
    """For each t, the decisions at bars ≤ t that change when the future after t is
    replaced; empty when the strategy is causal on this tape."""
    base = strategy.signals(bars)
    out: list[str] = []
    for t in times:
        for name, px, fx in PLANTS:
            other = strategy.signals(plant_future(bars, t, px, fx))
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
