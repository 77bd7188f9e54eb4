"""Wire shapes of the Bybit v5 public market endpoints we use (docs/v5/market/*.mdx,
docs/v5/websocket/public/*.mdx). Numbers arrive as strings unless noted. These types document
the payload; parse.py validates it, since nothing from the wire is trusted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict

CATEGORY = "linear"
PERPETUAL = "LinearPerpetual"
QUOTE = "USDT"
TRADING = "Trading"

INSTRUMENTS_LIMIT = 1000  # instruments-info: 1..1000
KLINE_LIMIT = 1000  # kline: 1..1000
OPEN_INTEREST_LIMIT = 200  # open-interest: 1..200
FUNDING_LIMIT = 200  # funding/history: 1..200
ACCOUNT_RATIO_LIMIT = 500  # account-ratio: 1..500


# Bybit kline interval → (our Candle.interval, length; None = calendar month)
KLINE_INTERVALS: dict[str, tuple[str, timedelta | None]] = {
    "1": ("1m", timedelta(minutes=1)),
    "3": ("3m", timedelta(minutes=3)),
    "5": ("5m", timedelta(minutes=5)),
    "15": ("15m", timedelta(minutes=15)),
    "30": ("30m", timedelta(minutes=30)),
    "60": ("1h", timedelta(hours=1)),
    "120": ("2h", timedelta(hours=2)),
    "240": ("4h", timedelta(hours=4)),
    "360": ("6h", timedelta(hours=6)),
    "720": ("12h", timedelta(hours=12)),
    "D": ("1d", timedelta(days=1)),
    "W": ("1w", timedelta(weeks=1)),
    "M": ("1M", None),
}
OPEN_INTEREST_INTERVALS = frozenset({"5min", "15min", "30min", "1h", "4h", "1d"})
# account-ratio `period` → seconds (docs/v5/market/long-short-ratio: 5min … 1d)
ACCOUNT_RATIO_PERIODS: dict[str, int] = {
    "5min": 300, "15min": 900, "30min": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400,
}  # fmt: skip


class Envelope(TypedDict):
    retCode: int
    retMsg: str
    result: dict[str, Any]
    retExtInfo: dict[str, Any]
    time: int  # ms, a number


class LeverageFilter(TypedDict, total=False):
    minLeverage: str
    maxLeverage: str
    leverageStep: str


class PriceFilter(TypedDict, total=False):
    minPrice: str
    maxPrice: str
    tickSize: str


class LotSizeFilter(TypedDict, total=False):
    maxOrderQty: str
    minOrderQty: str
    qtyStep: str
    maxMktOrderQty: str
    minNotionalValue: str


class InstrumentItem(TypedDict, total=False):
    """result.list[] of /v5/market/instruments-info; result.nextPageCursor pages."""

    symbol: str
    contractType: str  # LinearPerpetual, LinearFutures, ...
    status: str  # PreLaunch, Trading, Delivering, Closed
    baseCoin: str
    quoteCoin: str
    settleCoin: str
    launchTime: str  # ms
    leverageFilter: LeverageFilter
    priceFilter: PriceFilter
    lotSizeFilter: LotSizeFilter
    fundingInterval: int  # minutes, a number


class TickerItem(TypedDict, total=False):
    """result.list[] of /v5/market/tickers, and `data` of the tickers.{symbol} topic."""

    symbol: str
    lastPrice: str
    indexPrice: str
    markPrice: str
    prevPrice24h: str
    price24hPcnt: str  # fraction: "0.0123" = +1.23 %
    highPrice24h: str
    lowPrice24h: str
    openInterest: str  # base asset
    openInterestValue: str  # quote
    turnover24h: str  # quote
    volume24h: str  # base
    fundingRate: str  # fraction per funding interval
    nextFundingTime: str  # ms
    fundingIntervalHour: str
    bid1Price: str
    ask1Price: str


# /v5/market/kline: result = {symbol, category, list}; list[] = [start ms, open, high, low,
# close, volume, turnover], newest first.
KlineRow = list[str]


class OpenInterestItem(TypedDict):
    """result.list[] of /v5/market/open-interest; result = {symbol, category, list, nextPageCursor}."""

    openInterest: str
    timestamp: str  # ms


class FundingItem(TypedDict):
    """result.list[] of /v5/market/funding/history, newest first."""

    symbol: str
    fundingRate: str
    fundingRateTimestamp: str  # ms


class AccountRatioItem(TypedDict):
    """result.list[] of /v5/market/account-ratio (newest first); result = {list,
    nextPageCursor}. buyRatio / sellRatio: share of accounts holding a long / a short."""

    symbol: str
    buyRatio: str
    sellRatio: str
    timestamp: str  # ms


class RiskLimitItem(TypedDict, total=False):
    """result.list[] of /v5/market/risk-limit; result = {category, list, nextPageCursor}. One
    tier: positions up to riskLimitValue (USD) keep maintenanceMargin (a rate, "0.005")."""

    id: int
    symbol: str
    riskLimitValue: str
    maintenanceMargin: str
    initialMargin: str
    isLowestRisk: int  # 1: the first tier
    maxLeverage: str
    mmDeduction: str


class ServerTime(TypedDict):
    timeSecond: str
    timeNano: str


class WsKlineItem(TypedDict):
    """data[] of kline.{interval}.{symbol}."""

    start: int  # ms, a number
    end: int
    interval: str
    open: str
    close: str
    high: str
    low: str
    volume: str
    turnover: str
    confirm: bool
    timestamp: int


class WsLiquidationItem(TypedDict):
    """data[] of allLiquidation.{symbol}. S is the side of the liquidated position (Buy = long);
    p is the bankruptcy price."""

    T: int  # ms, a number
    s: str
    S: str
    v: str
    p: str


class WsTradeItem(TypedDict, total=False):
    """data[] of publicTrade.{symbol} (ascending, up to 1024 per message). S is the taker's
    side (Buy = an aggressive buy); v the size in the base asset."""

    T: int  # ms, a number
    s: str
    S: str
    v: str
    p: str
    L: str  # tick direction
    i: str  # trade id
    BT: bool  # block trade
    RPI: bool
    seq: int


class WsMessage(TypedDict, total=False):
    topic: str
    type: str  # snapshot | delta (pybit merges ticker deltas and always says snapshot)
    ts: int
    cs: int
    data: Any
