"""Our trading vocabulary: sides, order states, fill kinds, close reasons, and the frozen records
of orders, positions, fills and closed PnL that every venue (paper, testnet, live) answers in.

No venue words and no venue payloads here: a venue adapter parses the venue's enums into these
(Nautilus style) and rejects what it cannot map, with the reason. Money is Decimal (the venue's
strings, exactly), never float. A figure the venue did not give is None, never a zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

Direction = Literal["long", "short"]
VenueName = Literal["paper", "testnet", "live"]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def direction(self) -> Direction:
        """The position an order of this side opens (a buy opens a long)."""
        return "long" if self is Side.BUY else "short"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @staticmethod
    def opening(direction: str) -> Side:
        """The side that opens (or adds to) a position of `direction`."""
        if direction not in ("long", "short"):
            raise ValueError(f"direction must be long or short, got {direction!r}")
        return Side.BUY if direction == "long" else Side.SELL

    @staticmethod
    def closing(direction: str) -> Side:
        """The side that reduces a position of `direction`."""
        return Side.opening(direction).opposite


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class OrderStatus(StrEnum):
    SUBMITTING = "submitting"  # ours: written before the venue call, no answer yet
    NEW = "new"  # accepted, resting, nothing filled
    TRIGGER_PENDING = "trigger_pending"  # a conditional order waiting for its trigger
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"  # by us, by the venue, or expired; filled_qty says how much filled
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


OPEN_STATUSES = frozenset(
    {OrderStatus.NEW, OrderStatus.TRIGGER_PENDING, OrderStatus.PARTIALLY_FILLED}
)
FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


class ExecKind(StrEnum):
    TRADE = "trade"  # an order of ours (or its attached TP/SL) filled
    FUNDING = "funding"  # a funding payment (fee > 0 paid, < 0 received)
    LIQUIDATION = "liquidation"  # the venue closed the position at its bankruptcy price
    ADL = "adl"  # auto-deleveraged: the venue closed us against a liquidated trader
    SETTLEMENT = "settlement"  # delivery / settlement of the contract


class Trigger(StrEnum):
    """What triggered a conditional order (None on a fill: a plain order)."""

    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    CONDITIONAL = "conditional"  # a stand-alone stop/if-touched order


class CloseReason(StrEnum):
    TP = "tp"
    SL = "sl"
    TRAILING_SL = "trailing_sl"
    LIQUIDATION = "liquidation"
    MANUAL = "manual"
    CANCELLED = "cancelled"  # the entry never filled
    SIGNAL = "signal"  # a strategy plug-in's opposite signal closed it (a reversal)


@dataclass(frozen=True)
class OrderRequest:
    order_link_id: str  # ≤ 36 chars, derived from the signal id (+ ladder index)
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None  # required for a limit order
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    stop_loss: Decimal | None = None  # SL/TP attached to the order, moved onto the position
    take_profit: Decimal | None = None
    # a market order for a decision taken at a bar's close: the paper venue fills it at the open
    # of the 1-min bar starting here (the backtester's next-bar-open rule), not at whatever the
    # last price is when the order arrives (the fleet's latency); a real venue ignores it
    fill_from: datetime | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.order_link_id) <= 36:
            raise ValueError(f"order_link_id must be 1..36 chars, got {self.order_link_id!r}")
        if self.qty <= 0:
            raise ValueError(f"qty must be positive, got {self.qty}")
        if self.order_type is OrderType.LIMIT and (self.price is None or self.price <= 0):
            raise ValueError("a limit order needs a positive price")
        # accept the plain strings too, and keep the enums
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "order_type", OrderType(self.order_type))
        object.__setattr__(self, "time_in_force", TimeInForce(self.time_in_force))


@dataclass(frozen=True)
class Order:
    order_link_id: str
    venue_order_id: str  # "" while the venue has not given one (a rejected request)
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None  # None for a market order
    status: OrderStatus
    filled_qty: Decimal
    avg_fill_price: Decimal | None  # None until something filled
    fee: Decimal  # cumulative, quote currency
    reduce_only: bool
    created_at: datetime
    updated_at: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    reject_reason: str | None = None
    duplicate: bool = False  # place_orders found it already placed (idempotent on link id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class EntryOrder:
    """An entry order of one of our trades, as our `orders` table holds it."""

    order_link_id: str
    status: OrderStatus
    filled_qty: Decimal
    avg_fill_price: Decimal | None


@dataclass(frozen=True)
class Position:
    symbol: str
    side: Side  # buy = long, sell = short
    size: Decimal  # base asset, > 0
    avg_price: Decimal
    mark_price: Decimal | None
    leverage: Decimal | None
    unrealised_pnl: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    liq_price: Decimal | None
    updated_at: datetime
    opened_at: datetime | None = None  # when the venue says the position opened, if it does
    fees: Decimal | None = None  # fees since open, when the venue keeps them

    @property
    def direction(self) -> Direction:
        return self.side.direction


@dataclass(frozen=True)
class Fill:
    exec_id: str
    venue_order_id: str
    order_link_id: str | None  # None for venue-made fills (TP/SL, liquidation, funding)
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal  # quote; a funding fill: > 0 paid, < 0 received
    time: datetime
    kind: ExecKind = ExecKind.TRADE
    trigger: Trigger | None = None


@dataclass(frozen=True)
class ClosedPnl:
    venue_order_id: str
    symbol: str
    side: Side  # side of the closing order
    qty: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal  # quote, after fees
    leverage: Decimal | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AccountEquity:
    equity: Decimal
    balance: Decimal
    unrealised_pnl: Decimal
    currency: str = "USDT"
