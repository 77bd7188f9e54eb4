"""The trailing ladder: at +10 % the stop goes to breakeven, at +20 % it locks +10 %, at +50 %
it locks +30 % (steps are a setting). Profit is measured on price or on margin (price % ×
leverage) — TRAILING_BASIS says which. A stop only ever tightens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["price", "margin"]


def profit_pct(direction: str, entry: float, price: float, leverage: float, basis: Basis) -> float:
    move = (price / entry - 1) * 100
    signed = move if direction == "long" else -move
    return signed * leverage if basis == "margin" else signed


def lock_price(
    direction: str, entry: float, lock_pct: float, leverage: float, basis: Basis
) -> float:
    """The price at which the position still makes `lock_pct` % (on the basis)."""
    on_price = lock_pct / leverage if basis == "margin" else lock_pct
    return entry * (1 + on_price / 100) if direction == "long" else entry * (1 - on_price / 100)


@dataclass(frozen=True)
class StopMove:
    step: int  # 1-based ladder step reached
    stop: float


def trailing_stop(
    direction: str,
    entry: float,
    best_profit_pct: float,
    current_stop: float | None,
    steps: list[tuple[float, float]],
    leverage: float,
    basis: Basis,
) -> StopMove | None:
    """The stop the ladder asks for at the best profit seen so far, or None when that would not
    tighten the current stop (it never loosens)."""
    reached = [k for k, (trigger, _) in enumerate(steps) if best_profit_pct >= trigger]
    if not reached:
        return None
    k = reached[-1]
    stop = lock_price(direction, entry, steps[k][1], leverage, basis)
    if current_stop is not None and not tighter(direction, stop, current_stop):
        return None
    return StopMove(k + 1, stop)


def tighter(direction: str, new: float, old: float) -> bool:
    """A long's stop tightens upwards, a short's downwards."""
    return new > old if direction == "long" else new < old
