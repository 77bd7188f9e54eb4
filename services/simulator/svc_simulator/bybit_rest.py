"""Bybit v5 public market REST, in the real shapes: string numbers, the retCode envelope,
cursor pagination, newest-first lists, and Bybit's parameter errors (HTTP 200, retCode 10001).
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from aiohttp import web

from quantcore.sim import CoinSpec, Market, TickerTable
from quantcore.sim.klines import INTERVAL_MINUTES
from quantcore.sim.market import I64
from quantcore.sim.rings import CLOSE, HIGH, LOW, OPEN, TURNOVER, VOLUME
from quantcore.sim.universe import risk_tiers as sim_risk_tiers
from svc_simulator import formatting as fmt
from svc_simulator.state import STATE, Handler, SimState

PARAMS_ERROR = 10001
RATE_LIMITED = 10006
RATE_LIMIT_MSG = "Too many visits"
SYMBOL_INVALID = "params error: symbol invalid"
ILLEGAL_CATEGORY = "Illegal category"
CATEGORIES = ("spot", "linear", "inverse", "option")
OI_INTERVALS = {"5min": 300, "15min": 900, "30min": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
IP_LIMIT = 600  # requests per 5 s per IP


class BybitError(Exception):
    def __init__(self, message: str, code: int = PARAMS_ERROR, result: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.result = {} if result is None else result


def limit_headers(state: SimState) -> dict[str, str]:
    reset_ms = (
        int((state.window_start + 5.0) * 1000) if state.window_start else int(time.time() * 1000)
    )
    return {
        "X-Bapi-Limit": str(IP_LIMIT),
        "X-Bapi-Limit-Status": str(max(IP_LIMIT - state.window_count, 0)),
        "X-Bapi-Limit-Reset-Timestamp": str(max(reset_ms, int(time.time() * 1000) + 100)),
    }


def envelope(state: SimState, result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {
        "retCode": code,
        "retMsg": msg,
        "result": result,
        "retExtInfo": {},
        "time": state.now_ms(),
    }


def reply(state: SimState, result: Any, status: int = 200) -> web.Response:
    return web.json_response(
        envelope(state, result), status=status, headers=limit_headers(state), dumps=fmt.compact
    )


def error_reply(state: SimState, exc: BybitError, status: int = 200) -> web.Response:
    body = envelope(state, exc.result, exc.code, exc.message)
    return web.json_response(body, status=status, headers=limit_headers(state), dumps=fmt.compact)


def rate_limited(state: SimState, status: int = 200) -> web.Response:
    """Bybit's per-UID limit reply; pybit sleeps until the reset header, then retries."""
    headers = limit_headers(state)
    headers["X-Bapi-Limit-Status"] = "0"
    headers["X-Bapi-Limit-Reset-Timestamp"] = str(int(time.time() * 1000) + 300)
    body = envelope(state, {}, RATE_LIMITED, RATE_LIMIT_MSG)
    return web.json_response(body, status=status, headers=headers, dumps=fmt.compact)


# --- parameters -------------------------------------------------------------------------------
def _int(
    query: Any,
    name: str,
    default: int | None = None,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BybitError(f"params error: {name} invalid") from None
    if low is not None and value < low:
        raise BybitError(f"params error: {name} invalid")
    if high is not None:
        value = min(value, high)
    return value


def _category(query: Any, default: str | None = None) -> str:
    category = query.get("category") or default
    if category not in CATEGORIES:
        raise BybitError(ILLEGAL_CATEGORY)
    return str(category)


def _one_of(query: Any, name: str, allowed: Container[str]) -> str:
    """A required parameter that must be one of `allowed` (an interval, a period)."""
    value = query.get(name)
    if not value:
        raise BybitError(f"params error: {name} is required")
    if value not in allowed:
        raise BybitError(f"params error: {name} invalid")
    return str(value)


def _coin(market: Market, query: Any, category: str) -> CoinSpec:
    symbol = query.get("symbol")
    if not symbol:
        raise BybitError("params error: symbol is required")
    index = market.symbol_index(symbol) if category == "linear" else None
    if index is None:
        raise BybitError(SYMBOL_INVALID)
    return market.coins[index]


def decode_cursor(raw: str | None) -> dict[str, str]:
    """Cursors look like Bybit's ("first%3DA%26last%3DB"), sent encoded or not."""
    if not raw:
        return {}
    text = raw
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    parsed = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if not parsed:
        raise BybitError("params error: cursor invalid")
    return parsed


def encode_cursor(**fields: str) -> str:
    return quote("&".join(f"{k}={v}" for k, v in fields.items()), safe="")


# --- tickers ---------------------------------------------------------------------------------------
def ticker_fields(coin: CoinSpec, table: TickerTable, ws: bool = False) -> dict[str, str]:
    i = coin.index
    last = float(table.last[i])
    prev24 = float(table.prev24[i])
    oi_qty = float(table.oi_qty[i])
    size = max(coin.qty_step, oi_qty * 2e-5 * (1 + (i * 7 + table.time) % 5))
    fields = {
        "symbol": coin.symbol,
        "lastPrice": fmt.price(coin, last),
        "indexPrice": fmt.price(coin, float(table.index[i])),
        "markPrice": fmt.price(coin, float(table.mark[i])),
        "prevPrice24h": fmt.price(coin, prev24),
        "price24hPcnt": fmt.rate(last / prev24 - 1 if prev24 > 0 else 0.0, 6),
        "highPrice24h": fmt.price(coin, float(table.high24[i])),
        "lowPrice24h": fmt.price(coin, float(table.low24[i])),
        "prevPrice1h": fmt.price(coin, float(table.prev1h[i])),
        "openInterest": fmt.qty(coin, oi_qty),
        "openInterestValue": fmt.fixed(float(table.oi_usd[i]), 2),
        "turnover24h": fmt.money(float(table.turnover24[i])),
        "volume24h": fmt.qty(coin, float(table.volume24[i])),
        "fundingRate": fmt.rate(float(table.funding[i])),
        "nextFundingTime": str(table.next_funding_s * 1000),
        "bid1Price": fmt.price(coin, last),
        "bid1Size": fmt.qty(coin, size),
        "ask1Price": fmt.price(coin, last + coin.tick),
        "ask1Size": fmt.qty(coin, size * 1.3),
    }
    if ws:
        prev = float(table.prev_tick[i])
        fields["tickDirection"] = (
            "PlusTick" if last > prev else "MinusTick" if last < prev else "ZeroPlusTick"
        )
        return fields
    fields.update(
        {
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "basis": "",
            "basisRateYear": "",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
            "fundingIntervalHour": "8",
            "fundingCap": fmt.rate(coin.funding_cap),
            "singleOpenInterest": fmt.qty(coin, oi_qty / 2),
            "singleOpenInterestValue": fmt.fixed(float(table.oi_usd[i]) / 2, 2),
        }
    )
    return fields


def instrument_fields(coin: CoinSpec) -> dict[str, Any]:
    max_qty = coin.qty_step * max(1, round(2e6 / (coin.price0 * coin.qty_step)))
    return {
        "symbol": coin.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": coin.base,
        "quoteCoin": "USDT",
        "launchTime": str(coin.launch_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(coin.price_decimals),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": fmt.fixed(coin.max_leverage, 2),
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": fmt.price(coin, coin.tick),
            "maxPrice": fmt.price(coin, coin.price0 * 1000 - coin.tick),
            "tickSize": fmt.price(coin, coin.tick),
        },
        "lotSizeFilter": {
            "maxOrderQty": fmt.qty(coin, max_qty),
            "minOrderQty": fmt.qty(coin, coin.qty_step),
            "qtyStep": fmt.qty(coin, coin.qty_step),
            "postOnlyMaxOrderQty": fmt.qty(coin, max_qty),
            "maxMktOrderQty": fmt.qty(coin, max_qty / 5),
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": "USDT",
        "copyTrading": "both" if coin.index < 20 else "none",
        "upperFundingRate": fmt.rate(coin.funding_cap),
        "lowerFundingRate": fmt.rate(-coin.funding_cap),
        "displayName": "",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


# --- handlers --------------------------------------------------------------------------------------
async def server_time(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ms = state.now_ms()
    return reply(state, {"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)})


async def instruments_info(request: web.Request) -> web.Response:
    state, q = request.app[STATE], request.query
    category = _category(q)
    limit = _int(q, "limit", 500, 1, 1000)
    assert limit is not None
    cursor = decode_cursor(q.get("cursor"))
    coins = sorted(state.market.coins, key=lambda c: c.symbol) if category == "linear" else []
    if q.get("symbol"):
        coins = [c for c in coins if c.symbol == q["symbol"]]
    if q.get("baseCoin"):
        coins = [c for c in coins if c.base == q["baseCoin"]]
    if q.get("status") and q["status"] != "Trading":
        coins = []
    if "last" in cursor:
        coins = [c for c in coins if c.symbol > cursor["last"]]
    page = coins[:limit]
    more = len(coins) > limit
    next_cursor = encode_cursor(first=page[0].symbol, last=page[-1].symbol) if more and page else ""
    result = {
        "category": category,
        "list": [instrument_fields(c) for c in page],
        "nextPageCursor": next_cursor,
    }
    return reply(state, result)


async def tickers(request: web.Request) -> web.Response:
    state, q = request.app[STATE], request.query
    category = _category(q)
    market = state.market
    if category != "linear":
        return reply(state, {"category": category, "list": []})
    table = market.tickers()
    if q.get("symbol"):
        index = market.symbol_index(q["symbol"])
        if index is None:
            raise BybitError(SYMBOL_INVALID, result={"category": "", "list": []})
        coins = [market.coins[index]]
    else:
        coins = market.coins
    return reply(state, {"category": category, "list": [ticker_fields(c, table) for c in coins]})


async def kline(request: web.Request) -> web.Response:
    state, q = request.app[STATE], request.query
    category = _category(q, default="linear")
    coin = _coin(state.market, q, category)
    interval = _one_of(q, "interval", INTERVAL_MINUTES)
    start = _int(q, "start", None, 0)
    end = _int(q, "end", None, 0)
    limit = _int(q, "limit", 200, 1, 1000)
    assert limit is not None
    starts, values = state.market.klines(
        coin.index,
        interval,
        None if start is None else -(-start // 1000),
        None if end is None else end // 1000,
        limit,
    )
    rows = [
        [
            str(int(starts[k]) * 1000),
            fmt.price(coin, float(values[OPEN, k])),
            fmt.price(coin, float(values[HIGH, k])),
            fmt.price(coin, float(values[LOW, k])),
            fmt.price(coin, float(values[CLOSE, k])),
            fmt.qty(coin, float(values[VOLUME, k])),
            fmt.money(float(values[TURNOVER, k])),
        ]
        for k in range(starts.size - 1, -1, -1)
    ]
    return reply(state, {"symbol": coin.symbol, "category": category, "list": rows})


def _newest_first_page(
    q: Any, max_limit: int, default_limit: int = 50
) -> tuple[int | None, int | None, int]:
    """startTime / endTime / limit / cursor of an endpoint served newest first and paged on by
    a `lastTs` cursor (open interest, account ratio): the range in whole seconds — its end
    moved to just before the previous page's oldest row — and the page size."""
    start = _int(q, "startTime", None, 0)
    end = _int(q, "endTime", None, 0)
    limit = _int(q, "limit", default_limit, 1, max_limit)
    assert limit is not None
    cursor = decode_cursor(q.get("cursor"))
    end_s = None if end is None else end // 1000
    if "lastTs" in cursor:
        try:
            before = int(cursor["lastTs"]) // 1000 - 1
        except ValueError:
            raise BybitError("params error: cursor invalid") from None
        end_s = before if end_s is None else min(end_s, before)
    return None if start is None else -(-start // 1000), end_s, limit


def _next_page_cursor(times: I64, more: bool) -> str:
    """The cursor of the page after one whose oldest row is `times[-1]` ("" at the end)."""
    return encode_cursor(lastTs=str(int(times[-1]) * 1000)) if more and times.size else ""


async def open_interest(request: web.Request) -> web.Response:
    state, q = request.app[STATE], request.query
    category = _category(q)
    coin = _coin(state.market, q, category)
    interval = _one_of(q, "intervalTime", OI_INTERVALS)
    start_s, end_s, limit = _newest_first_page(q, max_limit=200)
    times, values, more = state.market.open_interest(
        coin.index, OI_INTERVALS[interval], start_s, end_s, limit
    )
    rows = [
        {"openInterest": fmt.qty(coin, float(v)), "timestamp": str(int(t) * 1000)}
        for t, v in zip(times, values, strict=True)
    ]
    next_cursor = _next_page_cursor(times, more)
    result = {
        "symbol": coin.symbol,
        "category": category,
        "list": rows,
        "nextPageCursor": next_cursor,
    }
    return reply(state, result)


async def funding_history(request: web.Request) -> web.Response:
    state, q = request.app[STATE], request.query
    category = _category(q)
    coin = _coin(state.market, q, category)
    start = _int(q, "startTime", None, 0)
    end = _int(q, "endTime", None, 0)
    limit = _int(q, "limit", 200, 1, 200)
    assert limit is not None
    if start is not None and end is None:
        raise BybitError("params error: endTime is required when startTime is given")
    if start is not None and end is not None and start > end:
        raise BybitError("params error: startTime must not be after endTime")
    times, rates = state.market.funding_history(
        coin.index,
        None if start is None else -(-start // 1000),
        None if end is None else end // 1000,
        limit,
    )
    rows = [
        {
            "symbol": coin.symbol,
            "fundingRate": fmt.rate(float(r)),
            "fundingRateTimestamp": str(int(t) * 1000),
        }
        for t, r in zip(times, rates, strict=True)
    ]
    return reply(state, {"category": category, "list": rows})


# --- heatmap-model inputs (issue 14): account ratio, risk-limit tiers -----------------------------
RATIO_PERIODS = OI_INTERVALS  # account-ratio `period`: 5min, 15min, 30min, 1h, 4h, 1d


async def account_ratio(request: web.Request) -> web.Response:
    """GET /v5/market/account-ratio: buyRatio / sellRatio per period, newest first, cursor
    pages (as the open-interest endpoint), back as far as the 1-minute history goes."""
    state, q = request.app[STATE], request.query
    category = _category(q)
    if category not in ("linear", "inverse"):
        raise BybitError(ILLEGAL_CATEGORY)
    coin = _coin(state.market, q, category)
    period = _one_of(q, "period", RATIO_PERIODS)
    start_s, end_s, limit = _newest_first_page(q, max_limit=500)
    times, ratios, more = state.market.account_ratio(
        coin.index, RATIO_PERIODS[period], start_s, end_s, limit
    )
    rows = [
        {
            "symbol": coin.symbol, "buyRatio": f"{float(r):.4f}",
            "sellRatio": f"{1.0 - round(float(r), 4):.4f}", "timestamp": str(int(t) * 1000),
        }
        for t, r in zip(times, ratios, strict=True)
    ]  # fmt: skip
    next_cursor = _next_page_cursor(times, more)
    return reply(state, {"list": rows, "nextPageCursor": next_cursor})


def risk_tiers(coin: CoinSpec) -> list[dict[str, Any]]:
    """The coin's risk-limit ladder (quantcore.sim.universe.risk_tiers) in Bybit's fields."""
    return [
        {
            "id": k, "symbol": coin.symbol, "riskLimitValue": fmt.fixed(t.limit_usd, 0),
            "maintenanceMargin": fmt.rate(t.mmr), "initialMargin": fmt.rate(1.0 / t.max_leverage),
            "isLowestRisk": 1 if k == 1 else 0, "maxLeverage": fmt.fixed(t.max_leverage, 2),
            "mmDeduction": fmt.fixed(t.mm_deduction, 0) if k > 1 else "",
        }
        for k, t in enumerate(sim_risk_tiers(coin), start=1)
    ]  # fmt: skip


async def risk_limit(request: web.Request) -> web.Response:
    """GET /v5/market/risk-limit: the tiers of one coin (or of every coin, one page)."""
    state, q = request.app[STATE], request.query
    category = _category(q)
    if category not in ("linear", "inverse"):
        raise BybitError(ILLEGAL_CATEGORY)
    coins = [_coin(state.market, q, category)] if q.get("symbol") else state.market.coins
    rows = [row for coin in coins for row in risk_tiers(coin)]
    return reply(state, {"category": category, "list": rows, "nextPageCursor": ""})


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except BybitError as exc:
            return error_reply(request.app[STATE], exc)

    return wrapped


def add_routes(app: web.Application) -> None:
    routes = {
        "/v5/market/time": server_time,
        "/v5/market/instruments-info": instruments_info,
        "/v5/market/tickers": tickers,
        "/v5/market/kline": kline,
        "/v5/market/open-interest": open_interest,
        "/v5/market/funding/history": funding_history,
        "/v5/market/account-ratio": account_ratio,
        "/v5/market/risk-limit": risk_limit,
    }
    for path, handler in routes.items():
        app.router.add_get(path, _guard(handler))
