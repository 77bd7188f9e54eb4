"""The matching rules of a linear perpetual exchange, pure and in Decimal: where a taker fill
lands, when a limit order is marketable or traded through, what a fill costs, when a TP/SL
fires, where the position is liquidated, what funding charges, what a close realises. The paper
venue (books in PostgreSQL), the simulator's exchange (books in memory) and the backtester all
match with these; only where they keep their books differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from quantcore.model.trading import Side, Trigger

ONE = Decimal(1)
MAINTENANCE_MARGIN = Decimal("0.005")  # Bybit's lowest tier for most linear perps
FUNDING_EVERY = timedelta(hours=8)  # 00/08/16 UTC
T = TypeVar("T")
N = TypeVar("N", float, Decimal)
ExitKind = Literal["stop_loss", "take_profit", "liquidation"]


def sign(side: Side) -> int:
    """+1 for a long (a buy position), -1 for a short."""
    return 1 if side is Side.BUY else -1


def signed_taker_price(direction: Any, price: T, slippage: Any) -> T:
    """A market fill: `price` moved against the taker by `slippage` (a fraction), `direction` +1
    for a buy, −1 for a sell — Decimal, float or NumPy arrays alike. The paper venue fills at
    the reference price it has (the last price, or the next bar's open for a bar-close
    decision); the backtester fills entries and exits at the next bar's open with it."""
    out: T = price * (1 + direction * slippage)
    return out


def taker_price(side: Side, last: Decimal, slippage: Decimal) -> Decimal:
    """Where a market order fills: the last price moved against the taker by `slippage`
    (a fraction, 0.0005 = 0.05 %). A venue with a tick grid rounds it away from the taker."""
    return signed_taker_price(sign(side), last, slippage)


def marketable(side: Side, limit: Decimal, last: Decimal) -> bool:
    """A limit order that crosses the price takes liquidity at once (a buy at or above it)."""
    return limit >= last if side is Side.BUY else limit <= last


def fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """Trading fee in quote: notional × rate (maker or taker)."""
    return qty * price * rate


def stop_reached(
    position_side: Side, trigger: Trigger, trigger_price: Decimal, low: Decimal, high: Decimal
) -> bool:
    """A position's TP/SL is reached when the price range [low, high] touched it: a long's stop
    loss and a short's take profit fire on a fall, the other two on a rise. The simulator's
    exchange triggers with it, as Bybit does on its last price; our own venues (paper, the
    backtester) close positions with `first_exit`."""
    falls = (position_side is Side.BUY) == (trigger is not Trigger.TAKE_PROFIT)
    return low <= trigger_price if falls else high >= trigger_price


def adverse_reached(side: int, low: Any, high: Any, level: Any) -> Any:
    """The range [low, high] reached a level on the losing side of a position (`side` +1 long:
    at or below it; −1 short: at or above it). Scalars or NumPy arrays (a NaN level is never
    reached): `first_exit` decides with it, the backtester searches a tape with it."""
    return low <= level if side > 0 else high >= level


def favour_reached(side: int, low: Any, high: Any, level: Any) -> Any:
    """The range [low, high] reached a level on the winning side of a position."""
    return high >= level if side > 0 else low <= level


def adverse_level(side: int, stop: N | None, liquidation: N | None) -> tuple[N | None, bool]:
    """The level on the losing side the price meets first (a long's higher of stop and
    liquidation price, a short's lower; the liquidation at a tie), and whether it is the
    liquidation."""
    if stop is None or liquidation is None:
        return (stop, False) if liquidation is None else (liquidation, True)
    is_liq = (liquidation >= stop) if side > 0 else (liquidation <= stop)
    return (liquidation if is_liq else stop), is_liq


@dataclass(frozen=True)
class ExitFill(Generic[N]):
    """The exit that fired in an interval of the price path and where it filled."""

    kind: ExitKind
    price: N  # the fill price, slippage included where it applies
    gapped: bool  # the interval opened beyond the level: filled at its open


def first_exit(
    side: int,
    open_: N,
    high: N,
    low: N,
    *,
    stop: N | None,
    target: N | None,
    liquidation: N | None,
    slippage: N,
    gap: bool = True,
) -> ExitFill[N] | None:
    """THE stop / target / liquidation rule of a position (`side` +1 long, −1 short) over one
    interval of the price path, known by its open, high and low (a bar of the tape, the bars
    since the venue's last look, or one sampled price as all three). Every venue we run (the
    paper venue, the backtester) closes positions with it.

    - The adverse level is the nearer of the stop and the liquidation price (a long's higher,
      a short's lower): the price meets it first on the way; at a tie it is the liquidation.
    - Gap: an interval that opens at or beyond the adverse level fills that exit at the open;
      one that opens at or beyond the target fills the target at the open. `gap=False` when the
      interval's open is not a price the position lived through (the bar the entry filled in).
    - Otherwise an interval whose range reached the adverse level fires it at the level, even
      when it reached the target too: which came first inside an interval is unknown, so we
      assume the worse (conservative; backtesting.py and most libraries assume the same).
    - Otherwise a range that reached the target fires it at the target.
    - Fill prices: a stop is a market order once triggered: its level (or the gapped open)
      moved against us by `slippage` (taker_price); a take-profit fills at its level (a limit)
      or at the better gapped open; a liquidation always at the liquidation price (isolated
      margin: the exchange takes the position over there, whatever the gap; the loss stops at
      the margin).
    Returns None when no exit fired. Float or Decimal alike (not mixed)."""
    adverse, is_liq = adverse_level(side, stop, liquidation)

    def adverse_exit(level: N, base: N, at_open: bool) -> ExitFill[N]:
        if is_liq:
            return ExitFill("liquidation", level, at_open)
        return ExitFill("stop_loss", signed_taker_price(-side, base, slippage), at_open)

    if adverse is not None and gap and adverse_reached(side, open_, open_, adverse):
        return adverse_exit(adverse, open_, True)
    if target is not None and gap and favour_reached(side, open_, open_, target):
        return ExitFill("take_profit", open_, True)
    if adverse is not None and adverse_reached(side, low, high, adverse):
        return adverse_exit(adverse, adverse, False)
    if target is not None and favour_reached(side, low, high, target):
        return ExitFill("take_profit", target, False)
    return None


def liquidation_price(
    position_side: Side,
    avg_price: Decimal,
    leverage: Decimal,
    maintenance: Decimal = MAINTENANCE_MARGIN,
) -> Decimal:
    """Isolated-margin estimate: where the loss eats the margin down to maintenance,
    entry × (1 ∓ (1/leverage − maintenance))."""
    move = ONE / leverage - maintenance
    return avg_price * (ONE - move) if position_side is Side.BUY else avg_price * (ONE + move)


def unrealised_pnl(
    position_side: Side, size: Decimal, avg_price: Decimal, mark: Decimal
) -> Decimal:
    return (mark - avg_price) * size * sign(position_side)


def realised_pnl(position_side: Side, qty: Decimal, avg_price: Decimal, price: Decimal) -> Decimal:
    """What closing `qty` of the position at `price` realises, before fees."""
    return (price - avg_price) * qty * sign(position_side)


def funding_times(since: datetime, now: datetime) -> list[datetime]:
    """Funding boundaries (00/08/16 UTC) in (since, now]."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    t = start.replace(hour=start.hour - start.hour % 8)
    out = []
    while t <= now:
        if t > since:
            out.append(t)
        t += FUNDING_EVERY
    return out


def funding_fee(
    position_side: Side, size: Decimal, mark: Decimal, rate: Decimal, times: int = 1
) -> Decimal:
    """What the position pays (> 0) or receives (< 0) over `times` fundings at `rate` (a
    fraction): longs pay a positive rate, shorts receive it."""
    return size * mark * rate * sign(position_side) * times


@dataclass(frozen=True)
class PositionChange:
    """A one-way position after one fill."""

    side: Side | None  # None: flat
    size: Decimal
    avg_price: Decimal  # 0 when flat
    closed_qty: Decimal  # how much of the previous position the fill closed
    realised: Decimal  # gross PnL of the closed part (before fees)
    flipped: bool  # closed the position and opened the other side with the rest


def apply_fill(
    side: Side | None,
    size: Decimal,
    avg_price: Decimal,
    fill_side: Side,
    qty: Decimal,
    price: Decimal,
) -> PositionChange:
    """One fill on a one-way position: the same side adds at the volume-weighted average price;
    the other side reduces, realising PnL on what it closes, and a larger one flips the
    position, opening the rest at the fill price."""
    if qty <= 0:
        raise ValueError(f"a fill needs a positive qty, got {qty}")
    zero = Decimal(0)
    if side is None or size <= 0 or side is fill_side:
        held = size if side is not None and size > 0 else zero
        new_size = held + qty
        avg = (avg_price * held + price * qty) / new_size
        return PositionChange(fill_side, new_size, avg, zero, zero, False)
    closed = min(qty, size)
    realised = realised_pnl(side, closed, avg_price, price)
    if size > closed:
        return PositionChange(side, size - closed, avg_price, closed, realised, False)
    if qty > closed:
        return PositionChange(fill_side, qty - closed, price, closed, realised, True)
    return PositionChange(None, zero, zero, closed, realised, False)


def opening_qty(
    position_side: Side | None, position_size: Decimal, order_side: Side, qty: Decimal
) -> Decimal:
    """The part of an order that opens exposure: all of it on a flat book or the same side;
    on the other side only what exceeds the position it first closes."""
    if position_side is None or position_size <= 0 or position_side is order_side:
        return qty
    return max(Decimal(0), qty - position_size)


def order_cost(opening: Decimal, price: Decimal, leverage: Decimal, taker_rate: Decimal) -> Decimal:
    """What an order must find available to be accepted: the initial margin of what it opens
    plus the taker fee of opening it."""
    return opening * price / leverage + fee(opening, price, taker_rate)


def split_fee(fee_paid: Decimal, closed_qty: Decimal, qty: Decimal) -> tuple[Decimal, Decimal]:
    """A fill's fee between the part that closed the position and the part that opened the
    other side (a flip): pro rata of the quantities."""
    close_fee = fee_paid * closed_qty / qty
    return close_fee, fee_paid - close_fee
