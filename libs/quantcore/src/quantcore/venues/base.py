"""The venue interface the autotrader and the position monitor trade through.

Every venue answers in our vocabulary (`quantcore.model.trading`): the pybit venues translate
Bybit's words at the adapter, the paper venue speaks ours natively, so they are interchangeable
and the `orders` table stores one vocabulary. Money is Decimal, never float.

Failures are quantcore.errors: TemporaryError (retry later; after a write the order may exist),
Rejected (the venue refused: rules, balance, unknown order), AuthError, BadPayload.

Idempotency contract: `place_orders` with an `order_link_id` the venue already holds does not
place a second order; it returns the existing order with `duplicate=True` (Bybit answers such a
request with retCode 110072; the pybit venue turns that into a lookup).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from quantcore.model.trading import (
    AccountEquity,
    ClosedPnl,
    Fill,
    Order,
    OrderRequest,
    Position,
    VenueName,
)


class Venue(Protocol):
    """What the autotrader and the position monitor need from a venue."""

    name: VenueName

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order]:
        """Place orders (one batch request where the venue allows); idempotent on
        order_link_id. Raises a quantcore.errors type for the whole batch only when
        nothing was placed; per-order rejections come back with status rejected."""
        ...

    async def get_order(self, symbol: str, order_link_id: str) -> Order | None: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def amend_order(
        self,
        symbol: str,
        order_link_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order: ...

    async def cancel_order(self, symbol: str, order_link_id: str) -> Order | None: ...

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

    async def positions(self, symbol: str | None = None) -> list[Position]: ...

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Fill]: ...

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]: ...

    async def equity(self) -> AccountEquity: ...

    async def close(self) -> None: ...
