"""Market-data domain objects: what adapters produce from venue payloads and collectors store.

Prices and sizes are floats here (analytics, vectorised math); the database stores numeric.
Percentages are percent (2.0 means 2 %). Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The nine heatmap timeframes of the strategy (CoinGlass offers all but 14d).
TIMEFRAMES: tuple[str, ...] = ("12h", "24h", "3d", "7d", "14d", "30d", "90d", "180d", "1y")
TIMEFRAME_DURATION: dict[str, timedelta] = {
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
    "14d": timedelta(days=14),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "1y": timedelta(days=365),
}
Timeframe = Literal["12h", "24h", "3d", "7d", "14d", "30d", "90d", "180d", "1y"]
Side = Literal["long", "short"]  # side of the position (liquidated longs sit below price)
Source = Literal["bybit", "sim", "coinglass", "estimate"]
# Which heatmap fed a cluster, ranking or signal: CoinGlass, the key-free model (its levels
# are stored with source 'estimate') or the simulator's ground-truth heatmaps.
HeatmapSource = Literal["coinglass", "model", "sim"]
_HEATMAP_SOURCE: dict[str, HeatmapSource] = {
    "coinglass": "coinglass", "estimate": "model", "model": "model", "sim": "sim",
}  # fmt: skip


def heatmap_source(level_source: str) -> HeatmapSource | None:
    """The heatmap source of levels stored with `level_source` (None when not a heatmap's)."""
    return _HEATMAP_SOURCE.get(level_source)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value


class Instrument(_Model):
    """A tradable linear perpetual."""

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,30}$")
    base_coin: str
    quote_coin: str
    status: str
    tick_size: float = Field(gt=0)
    qty_step: float = Field(gt=0)
    min_qty: float = Field(ge=0)
    max_leverage: float = Field(ge=1)
    funding_interval_min: int | None = Field(None, ge=1)
    launch_time: datetime | None = None


class Ticker(_Model):
    """Current state of one coin (REST tickers or the tickers WebSocket topic)."""

    symbol: str
    time: datetime
    last_price: float = Field(gt=0)
    mark_price: float | None = Field(None, gt=0)
    index_price: float | None = Field(None, gt=0)
    bid_price: float | None = Field(None, ge=0)
    ask_price: float | None = Field(None, ge=0)
    open_interest: float | None = Field(None, ge=0)  # base asset, both sides
    open_interest_value: float | None = Field(None, ge=0)  # quote (USD)
    volume_24h: float | None = Field(None, ge=0)  # base asset
    turnover_24h: float | None = Field(None, ge=0)  # quote (USD)
    high_24h: float | None = Field(None, gt=0)
    low_24h: float | None = Field(None, gt=0)
    price_change_24h_pct: float | None = None  # percent
    funding_rate_pct: float | None = None  # percent per funding interval
    next_funding_at: datetime | None = None

    _check_time = field_validator("time")(_aware)


class Candle(_Model):
    """One OHLCV candle; `start` is the open time."""

    symbol: str
    interval: str = "1m"
    start: datetime
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)  # base asset
    turnover: float | None = Field(None, ge=0)  # quote
    confirmed: bool = True

    _check_start = field_validator("start")(_aware)

    @field_validator("high")
    @classmethod
    def _high_is_highest(cls, high: float, info: object) -> float:
        data = getattr(info, "data", {})
        for other in ("open", "low"):
            if other in data and data[other] > high:
                raise ValueError(f"high {high} below {other} {data[other]}")
        return high


class OpenInterestPoint(_Model):
    symbol: str
    time: datetime
    open_interest: float = Field(ge=0)  # base asset


class FundingRate(_Model):
    symbol: str
    time: datetime
    funding_rate_pct: float  # percent


class LiquidationEvent(_Model):
    """A forced liquidation that happened. `side` is the side of the liquidated position."""

    symbol: str
    time: datetime
    side: Side
    price: float = Field(gt=0)
    qty: float = Field(gt=0)
    source: Source
    event_key: str = Field(min_length=1, max_length=200)

    @property
    def value_usd(self) -> float:
        return self.price * self.qty


class TakerFlow(_Model):
    """Taker volume of one coin in one minute, from the public trade stream: what takers bought
    (aggressive buys) and sold, in the base asset. One message may carry part of a minute;
    the store adds them up."""

    symbol: str
    minute: datetime  # minute start
    buy_qty: float = Field(ge=0)
    sell_qty: float = Field(ge=0)
    trades: int = Field(ge=1)


class AccountRatio(_Model):
    """The venue's long/short account ratio at one time: the share of accounts holding a long."""

    symbol: str
    time: datetime
    period_s: int = Field(gt=0)
    long_ratio: float = Field(ge=0, le=1)


class RiskTier(_Model):
    """One risk-limit tier of a coin: positions up to `limit_usd` keep this maintenance margin."""

    symbol: str
    tier: int = Field(ge=1)
    limit_usd: float = Field(gt=0)
    maintenance_margin_rate: float = Field(gt=0, lt=1)
    initial_margin_rate: float | None = Field(None, gt=0, le=1)
    max_leverage: float | None = Field(None, ge=1)


class HeatmapLevel(_Model):
    price: float = Field(gt=0)
    value_usd: float = Field(ge=0)
    leverage: float | None = Field(None, ge=1)


class Heatmap(_Model):
    """Liquidation levels of one coin × timeframe at one moment.

    Levels above `price` are shorts that liquidate when price rises to them; levels below
    are longs that liquidate when price falls.
    """

    symbol: str
    timeframe: Timeframe
    time: datetime
    source: Source
    price: float = Field(gt=0)  # current price when the heatmap was taken
    levels: tuple[HeatmapLevel, ...]

    def side_of(self, level: HeatmapLevel) -> Side:
        return "short" if level.price > self.price else "long"
