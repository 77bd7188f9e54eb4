"""The position monitor's rules, pure: what a pending trade's entry orders mean, how far an open
position has run, where the trailing ladder puts its stop (on the venue's tick grid), why a
position closed and what it made. The service only wires venue → these → store → bus; the
backtester runs the same functions.

PnL in percent has one formula: `trailing.profit_pct` (price move, × leverage on the margin
basis). The closed trade's margin PnL is net: the venue's closed PnL (after fees) over the
margin committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from quantcore.model.trading import (
    OPEN_STATUSES,
    ClosedPnl,
    CloseReason,
    EntryOrder,
    ExecKind,
    Fill,
    OrderStatus,
    Side,
    Trigger,
)
from quantcore.trading import plugin, sizing, trailing

# --- tick grid -------------------------------------------------------------------------------------


def stop_on_tick(direction: str, stop: float, tick: float) -> Decimal:
    """A stop on the tick grid, rounded away from the price (down for a long, up for a short):
    the stop the venue will hold never sits closer to the price than the ladder asked."""
    if tick <= 0:
        return Decimal(str(round(stop, 10)))
    return sizing.safe_tick(direction, stop, tick)


def stop_valid(direction: str, stop: float, mark: float) -> bool:
    """A stop on the wrong side of the price would close at once: not now."""
    return stop < mark if direction == "long" else stop > mark


# --- pending trades ----------------------------------------------------------------------------------


class PendingVerdict(StrEnum):
    WAIT = "wait"  # entries still working
    FILLED_AND_CLOSED = "filled_and_closed"  # something filled but no position: closed already
    EXPIRED = "expired"  # past ENTRY_TIMEOUT_S: cancel what is open, cancel the trade
    ENDED_UNFILLED = "ended_unfilled"  # every entry ended at the venue with nothing filled


def pending_verdict(
    entries: Sequence[EntryOrder], age_s: float, timeout_s: float
) -> PendingVerdict:
    """What to do with a pending trade whose position the venue does not show."""
    if any(o.filled_qty > 0 for o in entries):
        return PendingVerdict.FILLED_AND_CLOSED
    if not entries:
        return PendingVerdict.WAIT
    if age_s > timeout_s:
        return PendingVerdict.EXPIRED
    if all(
        o.status not in OPEN_STATUSES and o.status is not OrderStatus.SUBMITTING for o in entries
    ):
        return PendingVerdict.ENDED_UNFILLED
    return PendingVerdict.WAIT


def average_fill(entries: Sequence[EntryOrder]) -> tuple[Decimal, Decimal] | None:
    """(qty, average price) of what the entries filled; None when nothing did."""
    filled = [o for o in entries if o.filled_qty > 0 and o.avg_fill_price is not None]
    qty = sum((o.filled_qty for o in filled), Decimal(0))
    if qty <= 0:
        return None
    value = sum((o.avg_fill_price * o.filled_qty for o in filled if o.avg_fill_price), Decimal(0))
    return qty, value / qty


# --- open positions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excursion:
    now_pct: float  # price move in our favour now, %
    best_pct: float  # best seen since open (max favourable excursion), %
    worst_pct: float  # worst seen since open (max adverse excursion), %


def excursion(
    direction: str, entry: float, mark: float, best: float | None, worst: float | None
) -> Excursion:
    now = trailing.profit_pct(direction, entry, mark, 1.0, "price")
    return Excursion(
        now,
        max(best if best is not None else now, now),
        min(worst if worst is not None else now, now),
    )


@dataclass(frozen=True)
class StopUpdate:
    stop: Decimal  # on the tick grid
    step: int  # 1-based ladder step reached
    best_on_basis: float  # the best profit, on TRAILING_BASIS, that reached the step
    profit_now_pct: float  # profit now, on TRAILING_BASIS


def trailing_update(
    direction: str,
    entry: float,
    mark: float,
    best_price_pct: float,
    current_stop: float | None,
    steps: list[tuple[float, float]],
    leverage: float,
    basis: trailing.Basis,
    tick: float,
) -> StopUpdate | None:
    """The stop the trailing ladder asks for now, or None: no step reached, the stop would not
    tighten (after rounding to the tick grid too), or it would sit on the wrong side of the price."""
    best_on_basis = best_price_pct * leverage if basis == "margin" else best_price_pct
    move = trailing.trailing_stop(
        direction, entry, best_on_basis, current_stop, steps, leverage, basis
    )
    if move is None or not stop_valid(direction, move.stop, mark):
        return None
    new_stop = stop_on_tick(direction, move.stop, tick)
    if current_stop is not None and not trailing.tighter(direction, float(new_stop), current_stop):
        return None
    profit_now = trailing.profit_pct(direction, entry, mark, leverage, basis)
    return StopUpdate(new_stop, move.step, best_on_basis, profit_now)


# --- closed positions --------------------------------------------------------------------------------


def close_reason(direction: str, fills: Sequence[Fill], stop_moved: bool) -> CloseReason:
    """Why the position closed, from the venue's fills on the closing side: liquidation (or
    auto-deleverage) first, then take-profit, then stop-loss (trailing when our ladder had moved
    it), a strategy's reversal close (`signal`), else a manual close."""
    closing_side = Side.closing(direction)
    closing = [f for f in fills if f.side is closing_side and f.kind is not ExecKind.FUNDING]
    if any(f.kind in (ExecKind.LIQUIDATION, ExecKind.ADL) for f in closing):
        return CloseReason.LIQUIDATION
    if any(f.trigger is Trigger.TAKE_PROFIT for f in closing):
        return CloseReason.TP
    if any(f.trigger in (Trigger.STOP_LOSS, Trigger.TRAILING_STOP) for f in closing):
        return CloseReason.TRAILING_SL if stop_moved else CloseReason.SL
    if any(plugin.is_signal_close(f.order_link_id) for f in closing):
        return CloseReason.SIGNAL
    return CloseReason.MANUAL


def pnl_pct_price(direction: str, entry: Decimal, exit_price: Decimal) -> float:
    """The price move in our favour, % (the one formula: trailing.profit_pct)."""
    return trailing.profit_pct(direction, float(entry), float(exit_price), 1.0, "price")


def pnl_pct_margin(pnl_quote: Decimal, entry: Decimal, qty: Decimal, leverage: Decimal) -> float:
    """Net PnL (after fees) over the margin committed (entry × qty / leverage), %."""
    margin = entry * qty / leverage
    if margin <= 0:
        raise ValueError(f"no margin: entry {entry}, qty {qty}, leverage {leverage}")
    return float(pnl_quote / margin * 100)


@dataclass(frozen=True)
class CloseResult:
    reason: CloseReason
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    leverage: Decimal
    pnl_quote: Decimal  # after fees (the venue's closed PnL)
    pnl_pct_price: float
    pnl_pct_margin: float
    fees: Decimal  # trading and funding fees of the fills seen since open


def close_result(
    direction: str,
    closes: Sequence[ClosedPnl],
    fills: Sequence[Fill],
    *,
    entry: Decimal | None,
    leverage: Decimal | None,
    stop_moved: bool,
) -> CloseResult:
    """The closed trade from the venue's closed-PnL records and fills. `entry` and `leverage`
    are ours (the trade's); the venue's stand in when we have none (an imported position);
    with no leverage anywhere the margin is the notional (1×)."""
    if not closes:
        raise ValueError("no closed-PnL record: the position has not closed at the venue yet")
    qty = sum((c.qty for c in closes), Decimal(0))
    pnl = sum((c.closed_pnl for c in closes), Decimal(0))
    exit_price = sum((c.avg_exit_price * c.qty for c in closes), Decimal(0)) / qty
    entry_price = entry if entry is not None else closes[0].avg_entry_price
    lev = leverage or closes[0].leverage or Decimal(1)
    return CloseResult(
        reason=close_reason(direction, fills, stop_moved),
        qty=qty,
        entry_price=entry_price,
        exit_price=exit_price,
        leverage=lev,
        pnl_quote=pnl,
        pnl_pct_price=pnl_pct_price(direction, entry_price, exit_price),
        pnl_pct_margin=pnl_pct_margin(pnl, entry_price, qty, lev),
        fees=sum((f.fee for f in fills), Decimal(0)),
    )
