"""The typed inputs and outputs of the one trade decision (quantcore.trading.decision).

A `MarketView` is what the decision reads about one coin (its target cluster, the next cluster
on the other side, the coin's max adverse wick, the price and when the data was read); the
answer is a `TradePlan` (entry orders, stop, take-profit, size, the reasons) or a `Refusal`
with its reason. They travel on the signal event, so no service re-reads the signal row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["long", "short"]
EntryMode = Literal["conservative", "aggressive", "scaled"]
RefusalCode = Literal[
    "bad_input",  # a number the decision needs is missing, zero or not finite
    "target_reached",  # price already at/through the take-profit
    "take_profit_not_beyond_entry",  # the TP is not at least a tick beyond every entry
    "stop_not_beyond_entry",  # the stop is not at least a tick beyond every entry
    "reward_risk_too_low",  # (TP - entry) / (entry - SL) below MIN_REWARD_RISK
    "size_zero",  # the size at risk rounds to nothing on the qty step
    "target_gone",  # after a refresh the coin no longer has the target (pre-trade refresh)
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceRange(_Frozen):
    """A cluster of liquidation levels: its price range and value."""

    low: float = Field(gt=0)
    high: float = Field(gt=0)
    value_usd: float | None = Field(None, ge=0)


class MarketView(_Frozen):
    """What the decision knows about one coin at `data_time` (when its levels were read)."""

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    direction: Direction
    price: float = Field(gt=0)
    target: PriceRange
    next_opposite: PriceRange | None = None  # the nearest cluster on the other side of price
    wick_pct: float | None = Field(None, ge=0)  # the coin's max adverse wick; None = unknown
    data_time: datetime | None = None
    timeframe: str | None = None  # the target's heatmap timeframe


class AccountState(_Frozen):
    equity: float = Field(ge=0)


class InstrumentRules(_Frozen):
    """The venue's price and quantity grid of one coin."""

    tick_size: float = Field(gt=0)
    qty_step: float = Field(gt=0)
    min_qty: float = Field(ge=0)


class PlannedOrder(_Frozen):
    price: Decimal = Field(gt=0)
    qty: Decimal | None = None  # None while unsized (the ranker has no account)
    ladder_index: int | None = None  # None for a single order


class TradePlan(_Frozen):
    symbol: str
    direction: Direction
    mode: EntryMode
    orders: tuple[PlannedOrder, ...] = Field(min_length=1)
    stop_loss: Decimal = Field(gt=0)
    take_profit: Decimal = Field(gt=0)
    avg_entry: float = Field(gt=0)
    reward_risk: float
    tick_size: float | None = None  # None: not yet on a venue grid (the ranker's plan)
    qty: Decimal | None = None  # total over the orders; None while unsized
    margin: float | None = None
    leverage: float = Field(ge=1)
    reasons: tuple[str, ...] = ()

    @property
    def entries(self) -> list[Decimal]:
        return [o.price for o in self.orders]

    @property
    def entry(self) -> Decimal:
        """The nearest entry to the market (the single entry, or the ladder's first rung)."""
        return self.orders[0].price


class Refusal(_Frozen):
    symbol: str
    code: RefusalCode
    reason: str


Decision = TradePlan | Refusal
