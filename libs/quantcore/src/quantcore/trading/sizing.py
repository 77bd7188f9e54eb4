"""Position size from the equity at risk, capped by the margin a trade may use, and rounding to
the instrument's steps (Bybit rejects a qty off qtyStep or a price off tickSize)."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal


def risk_qty(equity: float, risk_pct: float, entry: float, stop: float) -> float:
    """Base quantity that loses `risk_pct` % of equity when the stop is hit (fees aside)."""
    distance = abs(entry - stop)
    if equity <= 0 or entry <= 0 or distance <= 0:
        return 0.0
    return equity * risk_pct / 100 / distance


def capped_qty(
    qty: float, entry: float, equity: float, leverage: float, max_margin_pct: float
) -> float:
    """`qty`, reduced so its margin (notional / leverage) stays within `max_margin_pct` % of equity."""
    if entry <= 0:
        return 0.0
    cap = equity * max_margin_pct / 100 * leverage / entry
    return max(0.0, min(qty, cap))


def margin_of(qty: float, price: float, leverage: float) -> float:
    return qty * price / leverage


def floor_to_step(value: float, step: float) -> Decimal:
    """Round down to a multiple of `step` (a size is never rounded up past the risk)."""
    d_step = Decimal(str(step))
    return (Decimal(str(value)) / d_step).to_integral_value(rounding=ROUND_DOWN) * d_step


def safe_tick(direction: str, value: float, tick: float) -> Decimal:
    """`value` on the tick grid, rounded the safe way for a position in `direction`: down for a
    long, up for a short — an entry away from the target, a stop away from the entry (never
    tighter than its rule), a take-profit towards the entry (reached sooner). The one rule of
    the trade decision's prices and the trailing ladder's stops."""
    steps = Decimal(repr(float(value))) / Decimal(str(tick))
    rounded = steps.to_integral_value(
        rounding=ROUND_FLOOR if direction == "long" else ROUND_CEILING
    )
    return rounded * Decimal(str(tick))


def round_to_tick(value: float, tick: float) -> Decimal:
    d_tick = Decimal(str(tick))
    return (Decimal(str(value)) / d_tick).to_integral_value(rounding=ROUND_HALF_UP) * d_tick


def split_qty(total: Decimal, fractions: list[float], step: float, min_qty: float) -> list[Decimal]:
    """Split a quantity by fractions on the qty step; rungs below the minimum are dropped and
    their share goes to the others (nothing is silently lost: the sum never exceeds `total`)."""
    parts = [floor_to_step(float(total) * f, step) for f in fractions]
    parts = [p if p >= Decimal(str(min_qty)) and p > 0 else Decimal(0) for p in parts]
    leftover = total - sum(parts, Decimal(0))
    d_step = Decimal(str(step))
    # hand the leftover steps to the largest rungs first
    order = sorted(range(len(parts)), key=lambda k: -fractions[k])
    for k in order:
        if leftover < d_step or parts[k] == 0:
            continue
        extra = (leftover / d_step).to_integral_value(rounding=ROUND_DOWN) * d_step
        parts[k] += extra
        leftover -= extra
    return parts


def is_finite_positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)
