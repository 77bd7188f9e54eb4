"""Bybit v5 private REST (linear, unified account, one-way mode) over the simulated exchange.

Every request is signed (auth.py) and lands in the account of its API key. Shapes follow
docs/v5/order/*.mdx, position/*.mdx, account/wallet-balance.mdx: string numbers, the retCode
envelope, newest-first lists with cursors, per-order results of create-batch in
`retExtInfo.list`. Errors are Bybit's codes with HTTP 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from aiohttp import web

from quantcore.sim import CoinSpec
from quantcore.sim.exchange import ExchangeError as EngineError
from quantcore.sim.exchange import (
    Fees,
    Instrument,
    OrderParams,
    Quote,
    SimAccount,
    SimClosedPnl,
    SimExchange,
    SimExecution,
    SimOrder,
    SimPosition,
)
from svc_simulator import formatting as fmt
from svc_simulator.auth import AuthError, authenticate, raw_query
from svc_simulator.bybit_rest import (
    BybitError,
    decode_cursor,
    encode_cursor,
    envelope,
    error_reply,
    limit_headers,
)
from svc_simulator.state import STATE, SimState

T = TypeVar("T")
CATEGORY = "linear"
SETTLE = "USDT"
WEEK_MS = 7 * 86_400_000
BATCH_MAX = 20  # linear orders per create-batch (docs: raised from 10 to 20 in 2025-02)
SIDES = ("Buy", "Sell")
ORDER_TYPES = ("Market", "Limit")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
TRIGGER_BY = ("LastPrice", "MarkPrice", "IndexPrice")
PRIVATE_PREFIXES = ("/v5/order/", "/v5/position/", "/v5/execution/", "/v5/account/")


# --- the exchange and the market ---------------------------------------------------------------
def instrument_of(coin: CoinSpec) -> Instrument:
    max_qty = coin.qty_step * max(1, round(2e6 / (coin.price0 * coin.qty_step)))
    return Instrument(
        coin.symbol,
        Decimal(fmt.price(coin, coin.tick)),
        Decimal(fmt.qty(coin, coin.qty_step)),
        Decimal(fmt.qty(coin, coin.qty_step)),
        Decimal(fmt.qty(coin, max_qty)),
        Decimal(fmt.fixed(coin.max_leverage, 2)),
    )


def sync(state: SimState, also: Iterable[str] = ()) -> None:
    """Hand the market's moves since the last call to the exchange (fills, TP/SL)."""
    exchange = state.exchange
    if exchange is None:
        return
    market = state.market
    high, low = market.take_range()
    wanted = exchange.symbols_in_use() | set(also)
    if not wanted:
        return
    table = market.tickers()
    quotes: dict[str, Quote] = {}
    for symbol in wanted:
        index = market.symbol_index(symbol)
        if index is None:
            continue
        coin = market.coins[index]
        quotes[symbol] = Quote(
            last=Decimal(fmt.price(coin, float(table.last[index]))),
            mark=Decimal(fmt.price(coin, float(table.mark[index]))),
            high=Decimal(fmt.price(coin, float(high[index]))),
            low=Decimal(fmt.price(coin, float(low[index]))),
        )
    exchange.on_quotes(quotes, market.now * 1000)


# --- formatting -------------------------------------------------------------------------------------
def _coin(state: SimState, symbol: str) -> CoinSpec:
    index = state.market.symbol_index(symbol)
    if index is None:
        raise BybitError("params error: symbol invalid")
    return state.market.coins[index]


def _places(value: Decimal, places: int) -> str:
    text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")
    return "0" + text[2:] if text.startswith("-0") and Decimal(text) == 0 else text


def money(value: Decimal) -> str:
    """Up to 8 decimals without trailing zeros, as Bybit prints fees and PnL."""
    text = _places(value, 8)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def price(coin: CoinSpec, value: Decimal | None) -> str:
    return "" if value is None else _places(value, coin.price_decimals)


def qty(coin: CoinSpec, value: Decimal) -> str:
    return _places(value, coin.qty_decimals)


def order_row(state: SimState, o: SimOrder) -> dict[str, Any]:
    coin = _coin(state, o.symbol)
    avg = o.avg_price
    return {
        "orderId": o.order_id,
        "orderLinkId": o.order_link_id,
        "blockTradeId": "",
        "symbol": o.symbol,
        "price": price(coin, o.price) or "0",
        "qty": qty(coin, o.qty),
        "side": o.side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": o.status,
        "createType": o.create_type,
        "cancelType": o.cancel_type,
        "rejectReason": o.reject_reason,
        "avgPrice": money(avg) if avg is not None else "",
        "leavesQty": qty(coin, o.leaves_qty),
        "leavesValue": money(o.leaves_qty * (o.price or Decimal(0))),
        "cumExecQty": qty(coin, o.cum_exec_qty),
        "cumExecValue": money(o.cum_exec_value),
        "cumExecFee": money(o.cum_exec_fee),
        "timeInForce": o.time_in_force,
        "orderType": o.order_type,
        "stopOrderType": o.stop_order_type,
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": price(coin, o.trigger_price) or "0",
        "takeProfit": price(coin, o.take_profit) or "0",
        "stopLoss": price(coin, o.stop_loss) or "0",
        "tpslMode": "Full" if (o.take_profit or o.stop_loss or o.stop_order_type) else "",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": o.tp_trigger_by if o.take_profit else "",
        "slTriggerBy": o.sl_trigger_by if o.stop_loss else "",
        "triggerDirection": _trigger_direction(o),
        "triggerBy": o.trigger_by if o.stop_order_type else "",
        "lastPriceOnCreated": price(coin, o.last_price_on_created),
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": o.close_on_trigger,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(o.created_ms),
        "updatedTime": str(o.updated_ms),
    }


def _trigger_direction(o: SimOrder) -> int:
    if not o.stop_order_type:
        return 0
    closes_long = o.side == "Sell"
    falls = closes_long == (o.stop_order_type == "StopLoss")
    return 2 if falls else 1


def position_row(state: SimState, ex: SimExchange, acc: SimAccount, p: SimPosition) -> Any:
    coin = _coin(state, p.symbol)
    lev = ex.leverage_of(acc, p.symbol)
    mark = ex.mark(p.symbol, p.avg_price)
    tp = acc.orders.get(p.tp_order_id) if p.tp_order_id else None
    sl = acc.orders.get(p.sl_order_id) if p.sl_order_id else None
    liq = ex.liq_price(acc, p)
    im = ex.position_im(acc, p)
    return {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": p.symbol,
        "side": p.side or "",
        "size": qty(coin, p.size),
        "avgPrice": money(p.avg_price),
        "positionValue": money(p.size * p.avg_price),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if p.size > 0 else 0,
        "leverage": money(lev),
        "positionBalance": money(im),
        "markPrice": price(coin, mark),
        "liqPrice": price(coin, liq) if liq is not None and liq > 0 else "",
        "bustPrice": "",
        "positionMM": money(p.size * mark * Decimal("0.005")),
        "positionIM": money(im),
        "tpslMode": "Full",
        "takeProfit": price(coin, tp.trigger_price) if tp and tp.is_open else "0",
        "stopLoss": price(coin, sl.trigger_price) if sl and sl.is_open else "0",
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "delta": "",
        "gamma": "",
        "vega": "",
        "theta": "",
        "unrealisedPnl": money(ex.unrealised(acc, p)),
        "curRealisedPnl": money(p.cur_realised_pnl),
        "cumRealisedPnl": money(p.cum_realised_pnl),
        "breakEvenPrice": "",
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(p.created_ms),
        "updatedTime": str(p.updated_ms),
        "seq": p.seq,
    }


def execution_row(state: SimState, e: SimExecution) -> dict[str, Any]:
    o = e.order
    coin = _coin(state, o.symbol)
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderLinkId": o.order_link_id,
        "side": o.side,
        "orderPrice": price(coin, o.price) or "0",
        "orderQty": qty(coin, o.qty),
        "leavesQty": qty(coin, o.leaves_qty),
        "createType": o.create_type,
        "orderType": o.order_type,
        "stopOrderType": o.stop_order_type or "UNKNOWN",
        "execFee": money(e.fee),
        "execId": e.exec_id,
        "execPrice": price(coin, e.price),
        "execQty": qty(coin, e.qty),
        "execType": "Trade",
        "execValue": money(e.qty * e.price),
        "execTime": str(e.time_ms),
        "feeCurrency": SETTLE,
        "isMaker": e.is_maker,
        "feeRate": money(e.fee_rate),
        "tradeIv": "",
        "markIv": "",
        "markPrice": price(coin, e.mark_price),
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": qty(coin, e.closed_size),
        "seq": e.seq,
        "extraFees": "",
    }


def closed_pnl_row(state: SimState, c: SimClosedPnl) -> dict[str, Any]:
    o = c.order
    coin = _coin(state, o.symbol)
    return {
        "symbol": o.symbol,
        "orderType": o.order_type,
        "leverage": money(c.leverage),
        "updatedTime": str(c.time_ms),
        "side": o.side,
        "orderId": o.order_id,
        "closedPnl": money(c.closed_pnl),
        "avgEntryPrice": money(c.avg_entry_price),
        "qty": qty(coin, o.qty),
        "cumEntryValue": money(c.closed_size * c.avg_entry_price),
        "createdTime": str(c.time_ms),
        "orderPrice": price(coin, o.price) or "0",
        "closedSize": qty(coin, c.closed_size),
        "avgExitPrice": money(c.avg_exit_price),
        "execType": "Trade",
        "fillCount": "1",
        "cumExitValue": money(c.closed_size * c.avg_exit_price),
        "openFee": money(c.open_fee),
        "closeFee": money(c.close_fee),
    }


# --- parameters ------------------------------------------------------------------------------------
def _decimal(raw: Any, name: str, *, allow_zero: bool = False) -> Decimal | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise BybitError(f"params error: {name} invalid")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise BybitError(f"params error: {name} invalid") from None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        raise BybitError(f"params error: {name} invalid")
    return value


def _bool(raw: Any, name: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return bool(raw == "true")
    raise BybitError(f"params error: {name} invalid")


def _choice(raw: Any, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    if raw is None or raw == "":
        if default is None:
            raise BybitError(f"params error: {name} is required")
        return default
    if raw not in choices:
        raise BybitError(f"params error: {name} invalid")
    return str(raw)


def _category(params: Mapping[str, Any]) -> None:
    category = params.get("category")
    if not category:
        raise BybitError("params error: category is required")
    if category != CATEGORY:
        raise BybitError("Illegal category")


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BybitError(f"params error: {name} invalid") from None
    if not low <= value <= high:
        raise BybitError(f"params error: {name} invalid")
    return value


def order_params(state: SimState, item: Mapping[str, Any]) -> OrderParams:
    symbol = item.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise BybitError("params error: symbol is required")
    _coin(state, symbol)
    link = item.get("orderLinkId") or ""
    if not isinstance(link, str) or len(link) > 36:
        raise BybitError("params error: orderLinkId invalid")
    position_idx = item.get("positionIdx", 0)
    if position_idx not in (0, "0", None):
        raise BybitError("position idx not match position mode")
    tpsl_mode = item.get("tpslMode")
    if tpsl_mode not in (None, "", "Full"):
        raise BybitError("params error: only tpslMode Full is supported by the simulator")
    qty_value = _decimal(item.get("qty"), "qty")
    if qty_value is None:
        raise BybitError("params error: qty is required")
    return OrderParams(
        symbol=symbol,
        side=cast(Any, _choice(item.get("side"), "side", SIDES)),
        order_type=cast(Any, _choice(item.get("orderType"), "orderType", ORDER_TYPES)),
        qty=qty_value,
        price=_decimal(item.get("price"), "price", allow_zero=True) or None,
        time_in_force=cast(Any, _choice(item.get("timeInForce"), "timeInForce", TIME_IN_FORCE, "GTC")),
        order_link_id=link,
        reduce_only=_bool(item.get("reduceOnly"), "reduceOnly"),
        close_on_trigger=_bool(item.get("closeOnTrigger"), "closeOnTrigger"),
        take_profit=_decimal(item.get("takeProfit"), "takeProfit", allow_zero=True) or None,
        stop_loss=_decimal(item.get("stopLoss"), "stopLoss", allow_zero=True) or None,
        tp_trigger_by=cast(Any, _choice(item.get("tpTriggerBy"), "tpTriggerBy", TRIGGER_BY, "LastPrice")),
        sl_trigger_by=cast(Any, _choice(item.get("slTriggerBy"), "slTriggerBy", TRIGGER_BY, "LastPrice")),
    )  # fmt: skip


def _window(params: Mapping[str, Any], now_ms: int) -> tuple[int, int]:
    """Bybit's 7-day rule for startTime / endTime."""
    start = _int(params, "startTime", -1, 0, 2**62)
    end = _int(params, "endTime", -1, 0, 2**62)
    if start < 0 and end < 0:
        return now_ms - WEEK_MS, now_ms
    if start < 0:
        return end - WEEK_MS, end
    if end < 0:
        return start, start + WEEK_MS
    if end < start:
        raise BybitError("params error: startTime must be less than endTime")
    if end - start > WEEK_MS:
        raise BybitError(
            "params error: The time range between startTime and endTime cannot exceed 7 days"
        )
    return start, end


def _page(rows: list[T], params: Mapping[str, Any], limit: int) -> tuple[list[T], str]:
    cursor = decode_cursor(params.get("cursor"))
    try:
        offset = int(cursor.get("offset", "0"))
    except ValueError:
        raise BybitError("params error: cursor invalid") from None
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return page, encode_cursor(offset=str(offset + limit)) if more else ""


# --- the request cycle -----------------------------------------------------------------------------
Handler = Callable[[SimState, SimExchange, SimAccount, Mapping[str, Any]], Any]


def private(handler: Handler, method: str) -> Callable[[web.Request], Any]:
    async def wrapped(request: web.Request) -> web.Response:
        state = request.app[STATE]
        try:
            exchange = state.exchange
            if exchange is None:
                raise BybitError("Route not found", code=10017)
            try:
                key = await authenticate(request, state.api_secrets)
            except AuthError as exc:
                raise BybitError(exc.message, code=exc.code) from None
            params = await _params(request, method)
            symbols = _symbols_of(params)
            sync(state, symbols)
            result = handler(state, exchange, exchange.account(key), params)
        except BybitError as exc:
            return error_reply(state, exc)
        except EngineError as exc:
            return error_reply(state, BybitError(exc.message, code=exc.code))
        ext: dict[str, Any] = {}
        if isinstance(result, tuple):
            result, ext = result
        body = envelope(state, result)
        body["retExtInfo"] = ext
        return web.json_response(body, headers=limit_headers(state), dumps=fmt.compact)

    return wrapped


def _symbols_of(params: Mapping[str, Any]) -> set[str]:
    found = {params["symbol"]} if isinstance(params.get("symbol"), str) else set()
    request = params.get("request")
    if isinstance(request, list):
        found |= {
            r["symbol"] for r in request if isinstance(r, dict) and isinstance(r.get("symbol"), str)
        }
    return found


async def _params(request: web.Request, method: str) -> Mapping[str, Any]:
    if method == "GET":
        return dict(parse_qsl(raw_query(request).decode(errors="replace"), keep_blank_values=True))
    body = await request.read()
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BybitError("params error: request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BybitError("params error: request body must be a JSON object")
    return data


# --- endpoints -------------------------------------------------------------------------------------
def create(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    order = ex.place(acc, order_params(state, p), state.market.now * 1000)
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def create_batch(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    items = p.get("request")
    if not isinstance(items, list) or not items:
        raise BybitError("params error: request is required")
    if len(items) > BATCH_MAX:
        raise BybitError(f"params error: at most {BATCH_MAX} orders per request")
    results, codes = [], []
    for item in items:
        symbol = item.get("symbol", "") if isinstance(item, dict) else ""
        try:
            if not isinstance(item, dict):
                raise BybitError("params error: each request item must be an object")
            order = ex.place(acc, order_params(state, item), state.market.now * 1000)
        except (BybitError, EngineError) as exc:
            code = exc.code
            message = exc.message
            results.append(
                {
                    "category": CATEGORY,
                    "symbol": symbol,
                    "orderId": "",
                    "orderLinkId": "",
                    "createAt": "",
                }
            )
            codes.append({"code": code, "msg": message})
            continue
        results.append(
            {
                "category": CATEGORY,
                "symbol": order.symbol,
                "orderId": order.order_id,
                "orderLinkId": order.order_link_id,
                "createAt": str(order.created_ms),
            }
        )
        codes.append({"code": 0, "msg": "OK"})
    return {"list": results}, {"list": codes}


def amend(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    symbol = _required_symbol(state, p)
    order_id, link = _ids(p)
    order = ex.amend(
        acc, symbol, order_id, link,
        qty=_decimal(p.get("qty"), "qty"),
        price=_decimal(p.get("price"), "price"),
        take_profit=_decimal(p.get("takeProfit"), "takeProfit", allow_zero=True),
        stop_loss=_decimal(p.get("stopLoss"), "stopLoss", allow_zero=True),
        now_ms=state.market.now * 1000,
    )  # fmt: skip
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def cancel(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    symbol = _required_symbol(state, p)
    order_id, link = _ids(p)
    order = ex.cancel(acc, symbol, order_id, link, state.market.now * 1000)
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def _required_symbol(state: SimState, p: Mapping[str, Any]) -> str:
    symbol = p.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise BybitError("params error: symbol is required")
    _coin(state, symbol)
    return symbol


def _ids(p: Mapping[str, Any]) -> tuple[str | None, str | None]:
    order_id = p.get("orderId") or None
    link = p.get("orderLinkId") or None
    if order_id is None and link is None:
        raise BybitError("params error: orderId or orderLinkId is required")
    return order_id, link


def realtime(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    limit = _int(p, "limit", 20, 1, 50)
    order_id, link = p.get("orderId") or None, p.get("orderLinkId") or None
    if order_id or link:
        found = acc.find(order_id, link)
        rows = [found] if found is not None else []
    else:
        if not (p.get("symbol") or p.get("baseCoin") or p.get("settleCoin")):
            raise BybitError("Missing some parameters that must be filled in, symbol or settleCoin")
        open_only = _int(p, "openOnly", 0, 0, 2)
        rows = [o for o in acc.orders.values() if o.is_open == (open_only == 0)]
        if p.get("symbol"):
            rows = [o for o in rows if o.symbol == p["symbol"]]
        elif p.get("baseCoin"):
            rows = [o for o in rows if _coin(state, o.symbol).base == p["baseCoin"]]
        elif p.get("settleCoin") not in (None, SETTLE):
            rows = []
        if open_only:
            rows = sorted(rows, key=lambda o: o.updated_ms, reverse=True)[:500]
    order_filter = p.get("orderFilter")
    if order_filter == "Order":
        rows = [o for o in rows if not o.stop_order_type]
    elif order_filter == "StopOrder":
        rows = [o for o in rows if o.stop_order_type]
    elif order_filter not in (None, ""):
        raise BybitError("params error: orderFilter invalid")
    rows.sort(key=lambda o: (o.created_ms, o.order_id), reverse=True)
    page, cursor = _page(rows, p, limit)
    return {
        "category": CATEGORY,
        "list": [order_row(state, o) for o in page],
        "nextPageCursor": cursor,
    }


def trading_stop(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    symbol = _required_symbol(state, p)
    if p.get("tpslMode") not in ("Full", "Partial"):
        raise BybitError("params error: tpslMode is required")
    if p.get("tpslMode") == "Partial":
        raise BybitError("params error: only tpslMode Full is supported by the simulator")
    if p.get("positionIdx") not in (0, "0"):
        raise BybitError("params error: positionIdx is required (0 in one-way mode)")
    if p.get("trailingStop") not in (None, "", "0"):
        raise BybitError("params error: trailingStop is not supported by the simulator")
    tp_by = p.get("tpTriggerBy")
    sl_by = p.get("slTriggerBy")
    ex.trading_stop(
        acc, symbol,
        take_profit=_decimal(p.get("takeProfit"), "takeProfit", allow_zero=True),
        stop_loss=_decimal(p.get("stopLoss"), "stopLoss", allow_zero=True),
        tp_trigger_by=cast(Any, _choice(tp_by, "tpTriggerBy", TRIGGER_BY)) if tp_by else None,
        sl_trigger_by=cast(Any, _choice(sl_by, "slTriggerBy", TRIGGER_BY)) if sl_by else None,
        now_ms=state.market.now * 1000,
    )  # fmt: skip
    return {}


def set_leverage(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    symbol = _required_symbol(state, p)
    buy = _decimal(p.get("buyLeverage"), "buyLeverage")
    sell = _decimal(p.get("sellLeverage"), "sellLeverage")
    if buy is None or sell is None:
        raise BybitError("params error: buyLeverage and sellLeverage are required")
    ex.set_leverage(acc, symbol, buy, sell)
    return {}


def positions(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    limit = _int(p, "limit", 20, 1, 200)
    symbol = p.get("symbol")
    if symbol:
        _coin(state, symbol)
        found = acc.positions.get(symbol)
        rows = [found] if found is not None else []
        if not rows:
            empty = SimPosition(symbol)
            rows = [empty]
    elif p.get("settleCoin"):
        rows = [pos for pos in acc.positions.values() if pos.size > 0]
        if p["settleCoin"] != SETTLE:
            rows = []
        rows.sort(key=lambda pos: pos.symbol)
    else:
        raise BybitError("Missing some parameters that must be filled in, symbol or settleCoin")
    page, cursor = _page(rows, p, limit)
    return {
        "category": CATEGORY,
        "list": [position_row(state, ex, acc, pos) for pos in page],
        "nextPageCursor": cursor,
    }


def executions(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    limit = _int(p, "limit", 50, 1, 100)
    rows = list(acc.executions)
    if p.get("orderId"):
        rows = [e for e in rows if e.order.order_id == p["orderId"]]
    elif p.get("orderLinkId"):
        rows = [e for e in rows if e.order.order_link_id == p["orderLinkId"]]
    else:
        start, end = _window(p, state.market.now * 1000)
        rows = [e for e in rows if start <= e.time_ms <= end]
        if p.get("symbol"):
            rows = [e for e in rows if e.order.symbol == p["symbol"]]
        elif p.get("baseCoin"):
            rows = [e for e in rows if _coin(state, e.order.symbol).base == p["baseCoin"]]
    if p.get("execType") not in (None, "", "Trade"):
        rows = []
    rows.sort(key=lambda e: (e.time_ms, e.seq), reverse=True)
    page, cursor = _page(rows, p, limit)
    return {
        "category": CATEGORY,
        "list": [execution_row(state, e) for e in page],
        "nextPageCursor": cursor,
    }


def closed_pnl(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    _category(p)
    limit = _int(p, "limit", 50, 1, 100)
    start, end = _window(p, state.market.now * 1000)
    rows = [c for c in acc.closed_pnl if start <= c.time_ms <= end]
    if p.get("symbol"):
        rows = [c for c in rows if c.order.symbol == p["symbol"]]
    rows.reverse()  # newest first
    page, cursor = _page(rows, p, limit)
    return {
        "category": CATEGORY,
        "list": [closed_pnl_row(state, c) for c in page],
        "nextPageCursor": cursor,
    }


def wallet_balance(state: SimState, ex: SimExchange, acc: SimAccount, p: Mapping[str, Any]) -> Any:
    if p.get("accountType") != "UNIFIED":
        raise BybitError("accountType only support UNIFIED")
    coins = [c for c in str(p.get("coin") or SETTLE).split(",") if c]
    upl = sum((ex.unrealised(acc, pos) for pos in acc.positions.values()), start=Decimal(0))
    equity = acc.wallet + upl
    position_im = sum(
        (ex.position_im(acc, pos) for pos in acc.positions.values()), start=Decimal(0)
    )
    order_im = ex.order_im(acc)
    mm = sum(
        (
            pos.size * ex.mark(pos.symbol, pos.avg_price) * Decimal("0.005")
            for pos in acc.positions.values()
        ),
        start=Decimal(0),
    )
    cum = sum((pos.cum_realised_pnl for pos in acc.positions.values()), start=Decimal(0))
    available = equity - position_im - order_im
    usdt = {
        "coin": SETTLE,
        "equity": money(equity),
        "usdValue": money(equity),
        "walletBalance": money(acc.wallet),
        "free": "",
        "locked": "0",
        "spotHedgingQty": "0",
        "borrowAmount": "0",
        "availableToBorrow": "",
        "availableToWithdraw": "",
        "accruedInterest": "0",
        "totalOrderIM": money(order_im),
        "totalPositionIM": money(position_im),
        "totalPositionMM": money(mm),
        "unrealisedPnl": money(upl),
        "cumRealisedPnl": money(cum),
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
    }

    def rate(x: Decimal) -> str:
        return money(x / equity) if equity > 0 else "0"

    return {
        "list": [
            {
                "accountType": "UNIFIED",
                "accountIMRate": rate(position_im + order_im),
                "accountMMRate": rate(mm),
                "accountLTV": "0",
                "totalEquity": money(equity),
                "totalWalletBalance": money(acc.wallet),
                "totalMarginBalance": money(equity),
                "totalAvailableBalance": money(available),
                "totalPerpUPL": money(upl),
                "totalInitialMargin": money(position_im + order_im),
                "totalMaintenanceMargin": money(mm),
                "coin": [usdt] if SETTLE in coins else [],
            }
        ]
    }


def add_routes(app: web.Application) -> None:
    posts: dict[str, Handler] = {
        "/v5/order/create": create,
        "/v5/order/create-batch": create_batch,
        "/v5/order/amend": amend,
        "/v5/order/cancel": cancel,
        "/v5/position/trading-stop": trading_stop,
        "/v5/position/set-leverage": set_leverage,
    }
    gets: dict[str, Handler] = {
        "/v5/order/realtime": realtime,
        "/v5/position/list": positions,
        "/v5/execution/list": executions,
        "/v5/position/closed-pnl": closed_pnl,
        "/v5/account/wallet-balance": wallet_balance,
    }
    for path, handler in posts.items():
        app.router.add_post(path, private(handler, "POST"))
    for path, handler in gets.items():
        app.router.add_get(path, private(handler, "GET"))


def build_exchange(
    coins: Iterable[CoinSpec],
    *,
    taker: float = 0.00055,
    maker: float = 0.0002,
    slippage: float = 0.0002,
    wallet: float = 10_000.0,
) -> SimExchange:
    instruments = {c.symbol: instrument_of(c) for c in coins}
    fees = Fees(Decimal(repr(taker)), Decimal(repr(maker)), Decimal(repr(slippage)))
    return SimExchange(instruments, fees, Decimal(repr(wallet)))
