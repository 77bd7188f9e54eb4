"""Scaled entry: a ladder of limit orders between two prices (Bybit has no native scaled order).

The ladder starts at the near price (the cluster edge, where the aggressive entry sits) and
steps away from the market (down for longs, up for shorts) to the far price. Sizes are flat,
increasing (more size further away: a better average if price comes to us) or decreasing,
and always sum to 1 (shares of the position's base quantity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Sizing = Literal["flat", "increasing", "decreasing"]
MAX_RUNGS = 20


@dataclass(frozen=True)
class Rung:
    price: float
    fraction: float  # share of the allocation, the rungs sum to 1


def ladder_range(direction: str, edge: float, range_pct: float) -> tuple[float, float]:
    """(near, far): from the cluster edge, `range_pct` away from the market."""
    far = edge * (1 - range_pct / 100) if direction == "long" else edge * (1 + range_pct / 100)
    return edge, far


def ladder(near: float, far: float, n: int, sizing: Sizing = "flat") -> list[Rung]:
    """`n` rungs evenly spaced from `near` to `far` (both included), nearest first."""
    if not 1 <= n <= MAX_RUNGS:
        raise ValueError(f"a ladder has 1..{MAX_RUNGS} orders, got {n}")
    if near <= 0 or far <= 0:
        raise ValueError("ladder prices must be positive")
    if n == 1:
        return [Rung(near, 1.0)]
    step = (far - near) / (n - 1)
    weights = {
        "flat": [1.0] * n,
        "increasing": [float(k + 1) for k in range(n)],
        "decreasing": [float(n - k) for k in range(n)],
    }[sizing]
    total = sum(weights)
    rungs = [Rung(near + step * k, w / total) for k, w in enumerate(weights)]
    # give the float remainder to the last rung so the fractions sum to exactly 1
    rest = 1.0 - sum(r.fraction for r in rungs[:-1])
    rungs[-1] = Rung(rungs[-1].price, rest)
    return rungs


def average_price(rungs: list[Rung]) -> float:
    """Average entry if every rung fills (fractions are shares of the base quantity)."""
    return sum(r.price * r.fraction for r in rungs)
