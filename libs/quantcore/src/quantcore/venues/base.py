"""The venue interface the autotrader and the position monitor trade through.

Vocabulary follows Bybit v5 (sides 'Buy'/'Sell', orderStatus values, orderLinkId), so the
paper venue and the pybit venues are interchangeable and the `orders` table stores one
vocabulary. Money is Decimal (the venue's strings), never float.

Idempotency contract: `place_orders` with an `order_link_id` the venue already holds does not
place a second order; it returns the existing order with `duplicate=True` (Bybit answers such a
request with retCode 110072; the pybit venue turns that into a lookup).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

OrderSide = Literal["Buy", "Sell"]
OrderType = Literal["Market", "Limit"]
TimeInForce = Literal["GTC", "IOC", "FOK", "PostOnly"]
VenueName = Literal["paper", "testnet", "live"]
# Bybit v5 orderStatus values we see on linear perps.
OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})
FINAL_STATUSES = frozenset(
    {"Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated"}
)


class VenueError(Exception):
    """A venue refused or failed a request. `code` is the venue's code (Bybit retCode)."""

    def __init__(self, message: str, code: int | None = None, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class OrderRejected(VenueError):
    """The venue refused this order for a reason that will not change on retry."""


class VenueUnavailable(VenueError):
    """Transport trouble, 5xx, rate limit: retry later (the order may or may not exist)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message, code, retryable=True)


@dataclass(frozen=True)
class OrderRequest:
    order_link_id: str  # ≤ 36 chars, derived from the signal id (+ ladder index)
    symbol: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    price: Decimal | None = None  # required for Limit
    time_in_force: TimeInForce = "GTC"
    reduce_only: bool = False
    stop_loss: Decimal | None = None  # attached SL/TP (Bybit tpslMode Full)
    take_profit: Decimal | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.order_link_id) <= 36:
            raise ValueError(f"order_link_id must be 1..36 chars, got {self.order_link_id!r}")
        if self.qty <= 0:
            raise ValueError(f"qty must be positive, got {self.qty}")
        if self.order_type == "Limit" and (self.price is None or self.price <= 0):
            raise ValueError("a Limit order needs a positive price")


@dataclass(frozen=True)
class VenueOrder:
    order_link_id: str
    venue_order_id: str
    symbol: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: str  # Bybit orderStatus
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    fee: Decimal  # cumulative, quote currency
    reduce_only: bool
    created_at: datetime
    updated_at: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    reject_reason: str | None = None
    duplicate: bool = False  # True when place_orders found it already placed (110072)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class VenuePosition:
    symbol: str
    side: OrderSide  # 'Buy' = long, 'Sell' = short
    size: Decimal  # base asset, > 0
    avg_price: Decimal
    mark_price: Decimal | None
    leverage: Decimal
    unrealised_pnl: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    liq_price: Decimal | None
    updated_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    exec_id: str
    venue_order_id: str
    order_link_id: str | None  # '' / None for venue-generated fills (SL/TP, liquidation)
    symbol: str
    side: OrderSide
    price: Decimal
    qty: Decimal
    fee: Decimal
    time: datetime
    exec_type: str = "Trade"  # Bybit execType: Trade, Funding, BustTrade, ...
    stop_order_type: str | None = None  # 'StopLoss' | 'TakeProfit' | 'TrailingStop' | None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClosedPnl:
    venue_order_id: str
    symbol: str
    side: OrderSide  # side of the closing order
    qty: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal  # quote, after fees
    leverage: Decimal
    created_at: datetime
    updated_at: datetime
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountEquity:
    equity: Decimal
    balance: Decimal
    unrealised_pnl: Decimal
    currency: str = "USDT"


class Venue(Protocol):
    """What the autotrader and the position monitor need from a venue."""

    name: VenueName

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[VenueOrder]:
        """Place orders (one batch request where the venue allows); idempotent on
        order_link_id. Raises OrderRejected / VenueUnavailable for the whole batch only when
        nothing was placed; per-order rejections come back as status 'Rejected'."""
        ...

    async def get_order(self, symbol: str, order_link_id: str) -> VenueOrder | None: ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    async def amend_order(
        self,
        symbol: str,
        order_link_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> VenueOrder: ...

    async def cancel_order(self, symbol: str, order_link_id: str) -> VenueOrder | None: ...

    async def set_trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> None:
        """Set the position's SL/TP (Bybit /v5/position/trading-stop, tpslMode Full)."""
        ...

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None: ...

    async def positions(self, symbol: str | None = None) -> list[VenuePosition]: ...

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Execution]: ...

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]: ...

    async def equity(self) -> AccountEquity: ...

    async def close(self) -> None: ...
