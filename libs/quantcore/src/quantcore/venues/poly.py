"""The Polymarket venue interface the copy trader trades through (paper now; live later).

In our words (`quantcore.model.trading.Side`, shares, probabilities, USD). Orders are taker
orders that fill at once against the book as far as their limit allows; the rest is cancelled
(Polymarket's FAK). A fill is what the venue reports, not what we asked for: the trader reads
positions and orders back from the venue (after a crash too).

Idempotency contract (as for perps): `place_order` with an `order_id` the venue already holds
places nothing and returns the existing order with `duplicate=True`.

Failures: a refused order (unknown or closed market, no liquidity, a price or size breaking the
market's rules, a tick size that changed under the order, not enough cash) comes back with
status `rejected` and `reason`; quantcore.errors.TemporaryError when the venue could not answer.

Venues: `quantcore.store.poly_venue.PaperPolyVenue` (paper, the default) and
`quantcore.store.poly_live_venue.LivePolyVenue` (Polymarket CLOB V2 through `py-clob-client-v2`:
L1/L2 auth, EIP-712 V2 orders, deposit wallets; fills confirmed from the Data API feeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from quantcore.model.poly import PolyBook
from quantcore.model.trading import OrderStatus, Side

PolyVenueName = Literal["paper", "live"]


@dataclass(frozen=True)
class PolyOrderRequest:
    order_id: str  # ours, derived from the signal: the idempotency key
    condition_id: str
    token_id: str
    side: Side
    limit: Decimal  # worst price accepted, on the tick grid the order was priced with
    shares: Decimal
    tick: Decimal  # the tick size the order was priced with (a change refuses the order)
    signal_key: str | None = None


@dataclass(frozen=True)
class PolyOrder:
    order_id: str
    condition_id: str
    token_id: str
    side: Side
    limit: Decimal
    shares: Decimal
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal
    status: OrderStatus
    reason: str | None
    created_at: datetime
    duplicate: bool = False


@dataclass(frozen=True)
class PolyHolding:
    condition_id: str
    token_id: str
    shares: Decimal
    cost: Decimal  # what the held shares cost, fees included (their exposure)
    entry_shares: Decimal  # the most shares held since the position opened (exit step base)
    realized_pnl: Decimal


@dataclass(frozen=True)
class PolyEquity:
    cash: Decimal
    exposure: Decimal  # open positions at cost
    start: Decimal

    @property
    def equity(self) -> Decimal:
        return self.cash + self.exposure


class BookSource(Protocol):
    """The current CLOB book of a token (the Polymarket client, or the simulator's CLOB)."""

    async def book(self, token_id: str) -> PolyBook: ...


class PolyVenue(Protocol):
    name: PolyVenueName

    async def place_order(self, req: PolyOrderRequest) -> PolyOrder: ...

    async def get_order(self, order_id: str) -> PolyOrder | None: ...

    async def orders(self, since: datetime | None = None) -> list[PolyOrder]: ...

    async def holdings(self) -> list[PolyHolding]: ...

    async def equity(self) -> PolyEquity: ...

    async def resolve(self, condition_id: str, winner_token_id: str) -> list[PolyHolding]:
        """Redeem every holding of a resolved market (winner pays 1 a share, loser 0)."""
        ...
