"""Polymarket domain objects: what the Polymarket adapter produces and the poly services store.

Prices are probabilities in [0, 1] (a share pays 1 pUSD if its outcome wins); sizes are shares;
money is USD (pUSD). Times are timezone-aware UTC datetimes. Wallets are lower-case 0x addresses.
No Polymarket field name travels past the adapter: these are our words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MarketVersion = Literal["v1", "v2"]  # v1: CTF token ids; v2: Protocol V2 position ids
TradeSide = Literal["BUY", "SELL"]
PositionStatus = Literal["OPEN", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE", "CLOSED"]
PolySource = Literal["polymarket", "sim"]
WALLET_PATTERN = r"^0x[0-9a-f]{40}$"
CONDITION_PATTERN = r"^0x[0-9a-f]{64}$"
TOKEN_PATTERN = r"^[0-9]{1,80}$"  # noqa: S105 (an outcome token id, not a secret)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value


class PolyOutcome(_Model):
    """One tradable side of a market: its name, its token (v1) or position (v2) id, its price."""

    name: str = Field(min_length=1)
    token_id: str = Field(pattern=TOKEN_PATTERN)
    price: float | None = Field(default=None, ge=0, le=1)
    winner: bool | None = None


class PolyMarket(_Model):
    market_id: str = Field(min_length=1)  # Gamma id (numeric string); the condition id at CLOB
    condition_id: str = Field(pattern=CONDITION_PATTERN)
    question: str = Field(min_length=1)
    slug: str | None = None
    version: MarketVersion = "v1"
    outcomes: tuple[PolyOutcome, ...] = Field(min_length=2)
    category: str | None = None
    tags: tuple[str, ...] = ()
    event_id: str | None = None
    volume_usd: float | None = Field(default=None, ge=0)
    liquidity_usd: float | None = Field(default=None, ge=0)
    end_date: datetime | None = None
    active: bool = True
    closed: bool = False
    accepting_orders: bool | None = None
    tick_size: float | None = Field(default=None, gt=0, lt=1)
    neg_risk: bool = False
    best_bid: float | None = Field(default=None, ge=0, le=1)
    best_ask: float | None = Field(default=None, ge=0, le=1)
    source: PolySource = "polymarket"

    _aware_end = field_validator("end_date")(_aware)

    @model_validator(mode="after")
    def _distinct_tokens(self) -> PolyMarket:
        ids = [o.token_id for o in self.outcomes]
        if len(set(ids)) != len(ids):
            raise ValueError("outcome token ids are not distinct")
        return self

    @property
    def resolved_outcome(self) -> str | None:
        """The winning outcome of a closed market (explicit winner flag, else a price of 1)."""
        if not self.closed:
            return None
        flagged = [o.name for o in self.outcomes if o.winner]
        if len(flagged) == 1:
            return flagged[0]
        paid = [o.name for o in self.outcomes if o.price is not None and o.price >= 0.999]
        return paid[0] if len(paid) == 1 else None


class PolyTag(_Model):
    tag_id: str = Field(min_length=1)
    label: str
    slug: str


class PolyEvent(_Model):
    event_id: str = Field(min_length=1)
    slug: str | None = None
    title: str
    end_date: datetime | None = None
    active: bool = True
    closed: bool = False
    tags: tuple[str, ...] = ()
    markets: tuple[PolyMarket, ...] = ()

    _aware_end = field_validator("end_date")(_aware)


class PolyTrade(_Model):
    """One fill from the Data API feed (taker side unless asked otherwise)."""

    wallet: str = Field(pattern=WALLET_PATTERN)
    side: TradeSide
    token_id: str = Field(pattern=TOKEN_PATTERN)
    condition_id: str = Field(pattern=CONDITION_PATTERN)
    size: float = Field(gt=0)
    price: float = Field(ge=0, le=1)
    time: datetime
    tx_hash: str | None = None
    outcome: str | None = None
    outcome_index: int | None = Field(default=None, ge=0)
    title: str | None = None
    source: PolySource = "polymarket"

    _aware_time = field_validator("time")(_aware)

    @property
    def usd(self) -> float:
        return self.size * self.price


class PolyPosition(_Model):
    """A wallet's position in one outcome token; `closed` once sold out, redeemed or resolved."""

    wallet: str = Field(pattern=WALLET_PATTERN)
    token_id: str = Field(pattern=TOKEN_PATTERN)
    condition_id: str = Field(pattern=CONDITION_PATTERN)
    status: PositionStatus
    size: float = Field(ge=0)
    avg_price: float = Field(ge=0, le=1)
    cost_usd: float = Field(ge=0)  # what the shares bought cost (entry cost)
    current_value_usd: float | None = Field(default=None, ge=0)
    realized_pnl_usd: float
    unrealized_pnl_usd: float | None = None
    outcome: str | None = None
    outcome_index: int | None = Field(default=None, ge=0)
    end_date: datetime | None = None
    title: str | None = None
    source: PolySource = "polymarket"

    _aware_end = field_validator("end_date")(_aware)

    @property
    def closed(self) -> bool:
        return self.status in ("CLOSED", "REDEEMABLE", "REDEEMABLE_LOST")


class BookLevel(_Model):
    price: float = Field(ge=0, le=1)
    size: float = Field(ge=0)


class PolyBook(_Model):
    condition_id: str = Field(pattern=CONDITION_PATTERN)
    token_id: str = Field(pattern=TOKEN_PATTERN)
    time: datetime
    bids: tuple[BookLevel, ...]  # best (highest) first
    asks: tuple[BookLevel, ...]  # best (lowest) first
    tick_size: float | None = Field(default=None, gt=0, lt=1)
    min_order_size: float | None = Field(default=None, ge=0)
    last_trade_price: float | None = Field(default=None, ge=0, le=1)
    neg_risk: bool = False  # a neg-risk market: orders are signed for the neg-risk exchange

    _aware_time = field_validator("time")(_aware)

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> float | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid


class PricePoint(_Model):
    token_id: str = Field(pattern=TOKEN_PATTERN)
    time: datetime
    price: float = Field(ge=0, le=1)

    _aware_time = field_validator("time")(_aware)


class LeaderboardEntry(_Model):
    """Leaderboard row. Finite windows (DAY/WEEK/MONTH) include unrealised PnL; ALL is realised."""

    rank: int = Field(ge=1)
    wallet: str = Field(pattern=WALLET_PATTERN)
    name: str | None = None
    pnl_usd: float
    volume_usd: float | None = Field(default=None, ge=0)
    period: Literal["DAY", "WEEK", "MONTH", "ALL"]

    @property
    def pnl_includes_unrealised(self) -> bool:
        return self.period != "ALL"


class Holder(_Model):
    wallet: str = Field(pattern=WALLET_PATTERN)
    token_id: str = Field(pattern=TOKEN_PATTERN)
    amount: float = Field(ge=0)
    outcome_index: int | None = Field(default=None, ge=0)
    name: str | None = None
    pnl_usd: float | None = None


class Activity(_Model):
    wallet: str = Field(pattern=WALLET_PATTERN)
    kind: Literal["TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE"]
    time: datetime
    condition_id: str | None = Field(default=None, pattern=CONDITION_PATTERN)
    token_id: str | None = Field(default=None, pattern=TOKEN_PATTERN)
    size: float | None = Field(default=None, ge=0)
    usd: float | None = Field(default=None, ge=0)
    price: float | None = Field(default=None, ge=0, le=1)
    side: TradeSide | None = None
    tx_hash: str | None = None

    _aware_time = field_validator("time")(_aware)
