"""How a strategy plug-in's signal is traded (the autotrader's rule for `signal.strategy`, the
backtest engine's rule on a tape): enter at the market; a signal on the side already held is
ignored; the opposite side closes the position and opens the new one (a reversal); stop and
target are distances in percent from the fill price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from quantcore.trading.sizing import capped_qty, floor_to_step

Held = Literal["same", "opposite", "none"]


def held_relation(held_side: int, signal_side: int) -> Held:
    """What the position held (+1 long, −1 short, 0 none) is to a new signal's side."""
    if held_side == 0:
        return "none"
    return "same" if held_side == signal_side else "opposite"


def stop_levels(
    side: int, fill: float, sl_pct: float | None, tp_pct: float | None
) -> tuple[float | None, float | None]:
    """Stop and target from the fill price: sl = fill × (1 − side × sl %), tp = fill × (1 + side
    × tp %) (None where the strategy gives none)."""
    sl = fill * (1 - side * sl_pct / 100) if sl_pct is not None else None
    tp = fill * (1 + side * tp_pct / 100) if tp_pct is not None else None
    return sl, tp


def market_qty(
    equity: float, price: float, leverage: float, max_margin_pct: float, qty_step: float
) -> Decimal:
    """The whole margin a trade may use (`max_margin_pct` % of equity at `leverage`), on the qty
    step: a plug-in's signal has no stop distance to size on, so it sizes on the cap."""
    return floor_to_step(
        capped_qty(float("inf"), price, equity, leverage, max_margin_pct), qty_step
    )
