"""Bybit v5 payloads → quantcore.model. Pure functions, no I/O.

A broken item becomes a BadPayload in `Parsed.bad` and the rest of the list is kept; a broken
envelope (no result, no list, the wrong symbol for a per-symbol call) raises BadPayload.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from pydantic import ValidationError

from quantcore.adapters.bybit.schemas import (
    ACCOUNT_RATIO_PERIODS,
    KLINE_INTERVALS,
    PERPETUAL,
    QUOTE,
    TRADING,
)
from quantcore.errors import BadPayload
from quantcore.model.market import (
    AccountRatio,
    Candle,
    FundingRate,
    Instrument,
    LiquidationEvent,
    OpenInterestPoint,
    RiskTier,
    TakerFlow,
    Ticker,
)

T = TypeVar("T")
StreamSource = Literal["bybit", "sim"]
SNIPPET = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^\d{1,16}$")
_NANOS = re.compile(r"^\d{1,22}$")

INSTRUMENT = "instrument"
TICKER = "ticker"
KLINE = "kline"
OPEN_INTEREST = "open_interest"
FUNDING = "funding_rate"
SERVER_TIME = "server_time"
WS_TICKER = "ws_ticker"
WS_KLINE = "ws_kline"
LIQUIDATION = "liquidation"
WS_MESSAGE = "ws_message"
ACCOUNT_RATIO = "account_ratio"
RISK_LIMIT = "risk_limit"
WS_TRADE = "ws_trade"


@dataclass
class Parsed(Generic[T]):
    items: list[T] = field(default_factory=list)
    bad: list[BadPayload] = field(default_factory=list)
    cursor: str = ""  # nextPageCursor, where the endpoint pages by cursor
    server_ms: int | None = None  # envelope `time`


def snippet(raw: Any) -> str:
    if isinstance(raw, str | bytes):
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    else:
        try:
            text = json.dumps(raw, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            text = repr(raw)
    return text[:SNIPPET]


def reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )[:300]
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc)[:300] or type(exc).__name__


# --- field readers (raise ValueError / KeyError) -------------------------------------------------


def num(item: Mapping[str, Any], key: str) -> float:
    value = item[key]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not (numeric or (isinstance(value, str) and _NUMBER.match(value.strip()))):
        raise ValueError(f"{key} is not a number: {str(value)[:40]!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{key} is not finite: {value!r}")
    return out


def opt_num(item: Mapping[str, Any], key: str) -> float | None:
    """An optional numeric field: absent or "" (Bybit's "no value") is None."""
    if item.get(key) in (None, ""):
        return None
    return num(item, key)


def text(item: Mapping[str, Any], key: str) -> str:
    value = item[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a non-empty string: {str(value)[:40]!r}")
    return value


def ms_int(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    raise ValueError(f"{key} is not a millisecond timestamp: {str(value)[:40]!r}")


def ms_time(value: Any, key: str) -> datetime:
    return EPOCH + timedelta(milliseconds=ms_int(value, key))


def pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


def as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not an object")
    return value


# --- envelope ----------------------------------------------------------------------------------------


def result_of(payload: Any, kind: str) -> Mapping[str, Any]:
    """`result` of a successful envelope. pybit already raised for retCode != 0; anything else
    that is not a proper envelope is a bad payload."""
    if not isinstance(payload, Mapping):
        raise BadPayload(kind, snippet(payload), "not a Bybit envelope (not a JSON object)")
    code = payload.get("retCode")
    if code not in (0, "0") or isinstance(code, bool):  # "0": some recorders store it as text
        raise BadPayload(
            kind, snippet(payload), f"not a successful Bybit envelope (retCode {code!r})"
        )
    result = payload.get("result")
    if not isinstance(result, Mapping):
        raise BadPayload(kind, snippet(payload), "envelope has no result object")
    return result


def list_of(
    payload: Any, kind: str, expect_symbol: str | None = None
) -> tuple[list[Any], Parsed[Any]]:
    result = result_of(payload, kind)
    items = result.get("list")
    if not isinstance(items, list):
        raise BadPayload(kind, snippet(payload), "result has no list")
    if expect_symbol is not None and result.get("symbol", expect_symbol) != expect_symbol:
        raise BadPayload(
            kind, snippet(payload), f"asked for {expect_symbol}, got {result.get('symbol')!r}"
        )
    time_ms = payload.get("time")
    meta: Parsed[Any] = Parsed(
        cursor=str(result.get("nextPageCursor") or ""),
        server_ms=time_ms if isinstance(time_ms, int) and not isinstance(time_ms, bool) else None,
    )
    return items, meta


def _collect(
    items: list[Any], kind: str, build: Callable[[Any], T | None], meta: Parsed[Any]
) -> Parsed[T]:
    out: Parsed[T] = Parsed(cursor=meta.cursor, server_ms=meta.server_ms)
    for raw in items:
        try:
            model = build(raw)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            out.bad.append(BadPayload(kind, snippet(raw), reason(exc)))
            continue
        if model is not None:
            out.items.append(model)
    return out


# --- REST ----------------------------------------------------------------------------------------------


def instrument(raw: Any) -> Instrument | None:
    """A linear USDT perpetual that is trading, else None (not ours, not an error)."""
    item = as_mapping(raw, "instrument")
    if (text(item, "contractType"), text(item, "quoteCoin"), text(item, "status")) != (
        PERPETUAL,
        QUOTE,
        TRADING,
    ):
        return None
    lot = as_mapping(item["lotSizeFilter"], "lotSizeFilter")
    interval = item.get("fundingInterval")
    launch = item.get("launchTime")
    return Instrument(
        symbol=text(item, "symbol"),
        base_coin=text(item, "baseCoin"),
        quote_coin=text(item, "quoteCoin"),
        status=text(item, "status"),
        tick_size=num(as_mapping(item["priceFilter"], "priceFilter"), "tickSize"),
        qty_step=num(lot, "qtyStep"),
        min_qty=num(lot, "minOrderQty"),
        max_leverage=num(as_mapping(item["leverageFilter"], "leverageFilter"), "maxLeverage"),
        funding_interval_min=None if interval in (None, "") else int(num(item, "fundingInterval")),
        launch_time=None if launch in (None, "", "0") else ms_time(launch, "launchTime"),
    )


def instruments_page(payload: Any) -> Parsed[Instrument]:
    items, meta = list_of(payload, INSTRUMENT)
    return _collect(items, INSTRUMENT, instrument, meta)


def ticker(raw: Any, time: datetime) -> Ticker:
    item = as_mapping(raw, "ticker")
    next_funding = item.get("nextFundingTime")
    return Ticker(
        symbol=text(item, "symbol"),
        time=time,
        last_price=num(item, "lastPrice"),
        mark_price=opt_num(item, "markPrice"),
        index_price=opt_num(item, "indexPrice"),
        bid_price=opt_num(item, "bid1Price"),
        ask_price=opt_num(item, "ask1Price"),
        open_interest=opt_num(item, "openInterest"),
        open_interest_value=opt_num(item, "openInterestValue"),
        volume_24h=opt_num(item, "volume24h"),
        turnover_24h=opt_num(item, "turnover24h"),
        high_24h=opt_num(item, "highPrice24h"),
        low_24h=opt_num(item, "lowPrice24h"),
        price_change_24h_pct=pct(opt_num(item, "price24hPcnt")),
        funding_rate_pct=pct(opt_num(item, "fundingRate")),
        next_funding_at=None
        if next_funding in (None, "", "0")
        else ms_time(next_funding, "nextFundingTime"),
    )


def tickers(payload: Any, symbol: str | None = None, now: datetime | None = None) -> Parsed[Ticker]:
    items, meta = list_of(payload, TICKER)
    at = (
        ms_time(meta.server_ms, "time")
        if meta.server_ms is not None
        else (now or datetime.now(UTC))
    )

    def build(raw: Any) -> Ticker:
        out = ticker(raw, at)
        if symbol is not None and out.symbol != symbol:
            raise ValueError(f"asked for {symbol}, got {out.symbol}")
        return out

    return _collect(items, TICKER, build, meta)


def candle_end(start: datetime, interval: str) -> datetime:
    length = KLINE_INTERVALS[interval][1]
    if length is not None:
        return start + length
    month = start.month % 12 + 1
    return start.replace(year=start.year + (start.month == 12), month=month)


def kline_page(
    payload: Any, symbol: str, interval: str, now: datetime | None = None
) -> Parsed[Candle]:
    """One page of /v5/market/kline (newest first, as sent). A candle that has not ended by the
    server's `time` is unconfirmed: its close is the last trade so far."""
    items, meta = list_of(payload, KLINE, expect_symbol=symbol)
    server_now = (
        ms_time(meta.server_ms, "time")
        if meta.server_ms is not None
        else (now or datetime.now(UTC))
    )
    our_interval = KLINE_INTERVALS[interval][0]

    def build(raw: Any) -> Candle:
        if not isinstance(raw, list) or len(raw) < 6:
            raise ValueError("kline row is not [start, open, high, low, close, volume, turnover]")
        row = dict(
            zip(("start", "open", "high", "low", "close", "volume", "turnover"), raw, strict=False)
        )
        start = ms_time(row["start"], "startTime")
        return Candle(
            symbol=symbol,
            interval=our_interval,
            start=start,
            open=num(row, "open"),
            high=num(row, "high"),
            low=num(row, "low"),
            close=num(row, "close"),
            volume=num(row, "volume"),
            turnover=opt_num(row, "turnover"),
            confirmed=candle_end(start, interval) <= server_now,
        )

    return _collect(items, KLINE, build, meta)


def open_interest_page(payload: Any, symbol: str) -> Parsed[OpenInterestPoint]:
    items, meta = list_of(payload, OPEN_INTEREST, expect_symbol=symbol)

    def build(raw: Any) -> OpenInterestPoint:
        item = as_mapping(raw, "open interest")
        return OpenInterestPoint(
            symbol=symbol,
            time=ms_time(item["timestamp"], "timestamp"),
            open_interest=num(item, "openInterest"),
        )

    return _collect(items, OPEN_INTEREST, build, meta)


def funding_page(payload: Any, symbol: str) -> Parsed[FundingRate]:
    items, meta = list_of(payload, FUNDING)

    def build(raw: Any) -> FundingRate:
        item = as_mapping(raw, "funding")
        if text(item, "symbol") != symbol:
            raise ValueError(f"asked for {symbol}, got {item['symbol']}")
        return FundingRate(
            symbol=symbol,
            time=ms_time(item["fundingRateTimestamp"], "fundingRateTimestamp"),
            funding_rate_pct=num(item, "fundingRate") * 100.0,
        )

    return _collect(items, FUNDING, build, meta)


def account_ratio_page(payload: Any, symbol: str, period: str) -> Parsed[AccountRatio]:
    """The long share of accounts per period. buyRatio + sellRatio is 1 up to rounding; a pair
    that is not (or a ratio outside 0..1) is bad data, never clamped into a value."""
    items, meta = list_of(payload, ACCOUNT_RATIO)
    period_s = ACCOUNT_RATIO_PERIODS[period]

    def build(raw: Any) -> AccountRatio:
        item = as_mapping(raw, "account ratio")
        if text(item, "symbol") != symbol:
            raise ValueError(f"asked for {symbol}, got {item['symbol']}")
        buy, sell = num(item, "buyRatio"), num(item, "sellRatio")
        if not (0.0 <= buy <= 1.0 and 0.0 <= sell <= 1.0 and abs(buy + sell - 1.0) <= 0.01):
            raise ValueError(f"buyRatio {buy} and sellRatio {sell} are not shares summing to 1")
        return AccountRatio(
            symbol=symbol, time=ms_time(item["timestamp"], "timestamp"), period_s=period_s,
            long_ratio=buy / (buy + sell) if buy + sell > 0 else buy,
        )  # fmt: skip

    return _collect(items, ACCOUNT_RATIO, build, meta)


def risk_limit_page(payload: Any, symbol: str | None = None) -> Parsed[RiskTier]:
    """Risk-limit tiers (of `symbol` only, when given), numbered per symbol in ascending
    riskLimitValue order once all pages are in (`number_tiers`); here `tier` is Bybit's id
    order within the page, renumbered later."""
    items, meta = list_of(payload, RISK_LIMIT)

    def build(raw: Any) -> RiskTier | None:
        item = as_mapping(raw, "risk limit")
        s = text(item, "symbol")
        if symbol is not None and s != symbol:
            return None  # another coin's tier (the endpoint may list every coin)
        lev = opt_num(item, "maxLeverage")
        im = opt_num(item, "initialMargin")
        return RiskTier(
            symbol=s, tier=1, limit_usd=num(item, "riskLimitValue"),
            maintenance_margin_rate=num(item, "maintenanceMargin"),
            initial_margin_rate=im if im else None, max_leverage=lev if lev else None,
        )  # fmt: skip

    return _collect(items, RISK_LIMIT, build, meta)


def number_tiers(tiers: list[RiskTier]) -> list[RiskTier]:
    """Tiers per symbol in ascending limit, numbered 1, 2, … (one tier per limit)."""
    out: list[RiskTier] = []
    by_symbol: dict[str, dict[float, RiskTier]] = {}
    for t in tiers:
        by_symbol.setdefault(t.symbol, {}).setdefault(t.limit_usd, t)
    for symbol in sorted(by_symbol):
        ladder = sorted(by_symbol[symbol].values(), key=lambda t: t.limit_usd)
        out += [t.model_copy(update={"tier": k}) for k, t in enumerate(ladder, start=1)]
    return out


def server_time(payload: Any) -> datetime:
    result = result_of(payload, SERVER_TIME)
    try:
        nano = result.get("timeNano")
        if isinstance(nano, str) and _NANOS.match(nano):
            return EPOCH + timedelta(microseconds=int(nano) // 1000)
        return EPOCH + timedelta(seconds=ms_int(result["timeSecond"], "timeSecond"))
    except (KeyError, ValueError) as exc:
        raise BadPayload(SERVER_TIME, snippet(payload), reason(exc)) from None


# --- WebSocket -------------------------------------------------------------------------------------


def _topic_symbol(topic: str, prefix: str) -> str:
    return topic[len(prefix) :]


def _ws_ticker(msg: Mapping[str, Any]) -> Parsed[Ticker]:
    symbol = _topic_symbol(msg["topic"], "tickers.")

    def build(raw: Any) -> Ticker:
        out = ticker(raw, ms_time(msg.get("ts"), "ts"))
        if out.symbol != symbol:
            raise ValueError(f"topic is {symbol}, data is {out.symbol}")
        return out

    return _collect([msg.get("data")], WS_TICKER, build, Parsed())


def _ws_kline(msg: Mapping[str, Any]) -> Parsed[Candle]:
    parts = str(msg["topic"]).split(".")
    if len(parts) != 3 or parts[1] not in KLINE_INTERVALS:
        raise BadPayload(WS_KLINE, snippet(msg), f"unknown kline topic {msg['topic']!r}")
    interval, symbol = parts[1], parts[2]
    data = msg.get("data")
    if not isinstance(data, list):
        raise BadPayload(WS_KLINE, snippet(msg), "data is not a list")

    def build(raw: Any) -> Candle:
        item = as_mapping(raw, "kline")
        confirm = item["confirm"]
        if not isinstance(confirm, bool):
            raise ValueError(f"confirm is not a boolean: {confirm!r}")
        return Candle(
            symbol=symbol,
            interval=KLINE_INTERVALS[interval][0],
            start=ms_time(item["start"], "start"),
            open=num(item, "open"),
            high=num(item, "high"),
            low=num(item, "low"),
            close=num(item, "close"),
            volume=num(item, "volume"),
            turnover=opt_num(item, "turnover"),
            confirmed=confirm,
        )

    return _collect(data, WS_KLINE, build, Parsed())


SIDES = {"Buy": "long", "Sell": "short"}  # S is the liquidated position's side


def liquidation(raw: Any, symbol: str, source: StreamSource) -> LiquidationEvent:
    item = as_mapping(raw, "liquidation")
    s, side = text(item, "s"), text(item, "S")
    if s != symbol:
        raise ValueError(f"topic is {symbol}, data is {s}")
    if side not in SIDES:
        raise ValueError(f"S is not Buy/Sell: {side!r}")
    t = ms_int(item["T"], "T")
    price, qty = num(item, "p"), num(item, "v")
    return LiquidationEvent(
        symbol=s,
        time=EPOCH + timedelta(milliseconds=t),
        side="long" if side == "Buy" else "short",
        price=price,
        qty=qty,
        source=source,
        # the venue's own fields, as sent: a re-sent event gets the same key and is stored once
        event_key=f"{s}:{t}:{side}:{str(item['v']).strip()}:{str(item['p']).strip()}",
    )


def _ws_liquidation(msg: Mapping[str, Any], source: StreamSource) -> Parsed[LiquidationEvent]:
    symbol = _topic_symbol(msg["topic"], "allLiquidation.")
    data = msg.get("data")
    if not isinstance(data, list):
        raise BadPayload(LIQUIDATION, snippet(msg), "data is not a list")
    return _collect(data, LIQUIDATION, lambda raw: liquidation(raw, symbol, source), Parsed())


TAKER_SIDES = ("Buy", "Sell")  # S of publicTrade is the taker's side


def _ws_trades(msg: Mapping[str, Any]) -> Parsed[TakerFlow]:
    """A publicTrade push → taker volume per minute (one TakerFlow per minute it spans); each
    trade is checked, a broken one is reported and left out of the sums."""
    symbol = _topic_symbol(msg["topic"], "publicTrade.")
    data = msg.get("data")
    if not isinstance(data, list):
        raise BadPayload(WS_TRADE, snippet(msg), "data is not a list")
    sums: dict[int, list[float]] = {}  # minute ms → [buy, sell, trades]

    def build(raw: Any) -> None:
        item = as_mapping(raw, "trade")
        s, side = text(item, "s"), text(item, "S")
        if s != symbol:
            raise ValueError(f"topic is {symbol}, data is {s}")
        if side not in TAKER_SIDES:
            raise ValueError(f"S is not Buy/Sell: {side!r}")
        qty, price = num(item, "v"), num(item, "p")
        if qty <= 0 or price <= 0:
            raise ValueError(f"v {qty} and p {price} must be positive")
        minute = ms_int(item["T"], "T") // 60_000 * 60_000
        acc = sums.setdefault(minute, [0.0, 0.0, 0.0])
        acc[0 if side == "Buy" else 1] += qty
        acc[2] += 1

    checked: Parsed[None] = _collect(data, WS_TRADE, build, Parsed())
    out: Parsed[TakerFlow] = Parsed(bad=checked.bad)
    for minute, (buy, sell, n) in sorted(sums.items()):
        out.items.append(
            TakerFlow(
                symbol=symbol,
                minute=EPOCH + timedelta(milliseconds=minute),
                buy_qty=buy,
                sell_qty=sell,
                trades=int(n),
            )
        )
    return out


WsModel = Ticker | Candle | LiquidationEvent | TakerFlow


def ws_message(msg: Any, source: StreamSource = "bybit") -> Parsed[WsModel]:
    """A public-topic push (as pybit hands it over) → models. Unknown topics yield nothing."""
    if not isinstance(msg, Mapping) or not isinstance(msg.get("topic"), str):
        return Parsed(bad=[BadPayload(WS_MESSAGE, snippet(msg), "message has no topic")])
    topic: str = msg["topic"]
    try:
        parsed: Parsed[Ticker] | Parsed[Candle] | Parsed[LiquidationEvent] | Parsed[TakerFlow]
        if topic.startswith("tickers."):
            parsed = _ws_ticker(msg)
        elif topic.startswith("kline."):
            parsed = _ws_kline(msg)
        elif topic.startswith("allLiquidation."):
            parsed = _ws_liquidation(msg, source)
        elif topic.startswith("publicTrade."):
            parsed = _ws_trades(msg)
        else:
            return Parsed()
    except BadPayload as exc:
        return Parsed(bad=[exc])
    return Parsed(items=[*parsed.items], bad=parsed.bad)
