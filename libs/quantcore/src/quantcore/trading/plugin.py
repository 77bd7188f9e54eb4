"""How a strategy plug-in's signal is traded (the autotrader's rule for `signal.strategy`, the
backtest engine's rule on a tape): enter at the market; a signal on the side already held is
ignored; the opposite side closes the position and opens the new one (a reversal); stop and
target are distances in percent from the fill price."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from quantcore.model.trading import ClosedPnl, ExecKind, Fill, Side
from quantcore.trading.sizing import capped_qty, floor_to_step, round_to_tick

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


def venue_levels(
    side: int, fill: float, sl_pct: float | None, tp_pct: float | None, tick: float | None
) -> tuple[Decimal | None, Decimal | None]:
    """The stop and target a trade sets at the venue: `stop_levels` of the fill, on the
    venue's tick grid (half a tick rounds up) when it is known (the autotrader always knows
    it; a tape may not)."""
    sl, tp = stop_levels(side, fill, sl_pct, tp_pct)

    def grid(x: float | None) -> Decimal | None:
        if x is None:
            return None
        return round_to_tick(x, tick) if tick else Decimal(repr(x))

    return grid(sl), grid(tp)


def market_qty(
    equity: float, price: float, leverage: float, max_margin_pct: float, qty_step: float
) -> Decimal:
    """The whole margin a trade may use (`max_margin_pct` % of equity at `leverage`), on the qty
    step: a plug-in's signal has no stop distance to size on, so it sizes on the cap."""
    return floor_to_step(
        capped_qty(float("inf"), price, equity, leverage, max_margin_pct), qty_step
    )


CLOSE_TAG = "x00"  # order_link_id = signal id hex + this: a reversal's reduce-only close


def close_link_id(signal_id: uuid.UUID) -> str:
    """The order id of the close a reversal places before its entry (≤ 36 chars)."""
    return f"{signal_id.hex}{CLOSE_TAG}"


def is_signal_close(order_link_id: str | None) -> bool:
    return (
        order_link_id is not None and len(order_link_id) == 35 and order_link_id.endswith(CLOSE_TAG)
    )


def own_fills(
    fills: Sequence[Fill], signal_id: uuid.UUID | None, direction: str | None = None
) -> list[Fill]:
    """A trade's fills among a coin's: a reversal books the next trade's entry at the same
    moment, on the closing side; that fill (another signal's order) is not this trade's.
    Fills without an order id (the venue's SL/TP, liquidation, funding) and reversal closes
    are kept — a venue-made trade fill only on this trade's closing side when `direction` is
    given (the next trade's stop, fired before the old trade was booked, is the next trade's);
    a trade without a signal (manual) keeps them all."""
    if signal_id is None:
        return list(fills)
    mine = signal_id.hex
    closing = Side.closing(direction) if direction is not None else None

    def venue_made_and_mine(f: Fill) -> bool:
        return closing is None or f.kind is ExecKind.FUNDING or f.side is closing

    return [
        f for f in fills
        if (f.order_link_id is None and venue_made_and_mine(f))
        or (f.order_link_id is not None
            and (f.order_link_id.startswith(mine) or is_signal_close(f.order_link_id)))
    ]  # fmt: skip


def own_closes(closes: Sequence[ClosedPnl], direction: str) -> list[ClosedPnl]:
    """A trade's closed-PnL records among a coin's: those closing its side (a reversal's next
    position, closed before the old trade was booked, is the next trade's)."""
    closing = Side.closing(direction)
    return [c for c in closes if c.side is closing]


def keeps_its_levels(trade_metadata: dict[str, object] | None) -> bool:
    """A plug-in's trade (the autotrader marks its metadata with the strategy) keeps the stop
    and target its strategy gave, as in the backtest: the trailing ladder is the liquidation
    hunter's rule, not every strategy's."""
    return bool(trade_metadata and trade_metadata.get("strategy"))
