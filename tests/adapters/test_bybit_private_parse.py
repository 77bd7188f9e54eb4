"""The pybit venue's parsing of Bybit v5 private payloads, on the response examples of Bybit's
own docs (bybit-exchange/docs docs/v5/order/*.mdx, position/*.mdx, account/wallet-balance.mdx),
and its mapping of pybit's errors to venue errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError

from quantcore.adapters.bybit import private as wire
from quantcore.adapters.bybit.http import IP_BAN_WAIT_S, translate
from quantcore.errors import (
    AuthError,
    BadPayload,
    ExternalError,
    RateLimited,
    Rejected,
    TemporaryError,
)
from quantcore.model.trading import ExecKind, OrderStatus, OrderType, Side, Trigger

# docs/v5/order/open-order.mdx, response example
OPEN_ORDERS: dict[str, Any] = {
    "retCode": 0, "retMsg": "OK",
    "result": {
        "list": [{
            "orderId": "fd4300ae-7847-404e-b947-b46980a4d140", "orderLinkId": "test-000005",
            "blockTradeId": "", "symbol": "ETHUSDT", "price": "1600.00", "qty": "0.10",
            "side": "Buy", "isLeverage": "", "positionIdx": 1, "orderStatus": "New",
            "cancelType": "UNKNOWN", "rejectReason": "EC_NoError", "avgPrice": "0",
            "leavesQty": "0.10", "leavesValue": "160", "cumExecQty": "0.00", "cumExecValue": "0",
            "cumExecFee": "0", "timeInForce": "GTC", "orderType": "Limit",
            "stopOrderType": "UNKNOWN", "orderIv": "", "triggerPrice": "0.00",
            "takeProfit": "2500.00", "stopLoss": "1500.00", "tpTriggerBy": "LastPrice",
            "slTriggerBy": "LastPrice", "triggerDirection": 0, "triggerBy": "UNKNOWN",
            "lastPriceOnCreated": "", "reduceOnly": False, "closeOnTrigger": False,
            "smpType": "None", "smpGroup": 0, "smpOrderId": "", "tpslMode": "Full",
            "tpLimitPrice": "", "slLimitPrice": "", "placeType": "",
            "createdTime": "1684738540559", "updatedTime": "1684738540561",
        }],
        "nextPageCursor": "page_args%3Dfd4300ae-7847-404e-b947-b46980a4d140%26symbol%3D6%26",
        "category": "linear",
    },
    "retExtInfo": {}, "time": 1684765770483,
}  # fmt: skip

# docs/v5/order/amend-order.mdx (create and cancel answer the same shape)
ACK = {
    "retCode": 0, "retMsg": "OK",
    "result": {"orderId": "c6f055d9-7f21-4079-913d-e6523a9cfffa", "orderLinkId": "linear-004"},
    "retExtInfo": {}, "time": 1672217093461,
}  # fmt: skip

# docs/v5/order/batch-place.mdx, with the second order failed the way Bybit reports it
BATCH = {
    "retCode": 0, "retMsg": "OK",
    "result": {"list": [
        {"category": "linear", "symbol": "ETHUSDT", "orderId": "b551f227-7059-4fb5-a6a6-699c04dbd2f2", "orderLinkId": "l-001", "createAt": "1672222047683"},
        {"category": "linear", "symbol": "ETHUSDT", "orderId": "", "orderLinkId": "", "createAt": ""},
    ]},
    "retExtInfo": {"list": [{"code": 0, "msg": "OK"}, {"code": 110072, "msg": "OrderLinkedID is duplicate"}]},
    "time": 1672222047684,
}  # fmt: skip

# docs/v5/position/position.mdx, response example
POSITIONS = {
    "retCode": 0, "retMsg": "OK",
    "result": {
        "list": [{
            "positionIdx": 0, "riskId": 1, "riskLimitValue": "150", "symbol": "BTCUSD",
            "side": "Sell", "size": "300", "avgPrice": "27464.50441675",
            "positionValue": "0.01092319", "tradeMode": 0, "positionStatus": "Normal",
            "autoAddMargin": 1, "adlRankIndicator": 2, "leverage": "10",
            "positionBalance": "0.00139186", "markPrice": "28224.50", "liqPrice": "",
            "bustPrice": "999999.00", "positionMM": "0.0000015", "positionIM": "0.00010923",
            "tpslMode": "Full", "takeProfit": "0.00", "stopLoss": "0.00", "trailingStop": "0.00",
            "unrealisedPnl": "-0.00029413", "cumRealisedPnl": "-0.00096902", "seq": 5723621632,
            "isReduceOnly": False, "mmrSysUpdateTime": "", "leverageSysUpdatedTime": "",
            "createdTime": "1676538056258", "updatedTime": "1697673600012",
        }],
        "nextPageCursor": "", "category": "inverse",
    },
    "retExtInfo": {}, "time": 1697684980172,
}  # fmt: skip

# docs/v5/order/execution.mdx, response example
EXECUTIONS = {
    "retCode": 0, "retMsg": "OK",
    "result": {
        "nextPageCursor": "132766%3A2%2C132766%3A2", "category": "linear",
        "list": [{
            "symbol": "ETHPERP", "orderType": "Market", "underlyingPrice": "", "orderLinkId": "",
            "side": "Buy", "indexPrice": "", "orderId": "8c065341-7b52-4ca9-ac2c-37e31ac55c94",
            "stopOrderType": "UNKNOWN", "leavesQty": "0", "execTime": "1672282722429",
            "feeCurrency": "", "isMaker": False, "execFee": "0.071409", "feeRate": "0.0006",
            "execId": "e0cbe81d-0f18-5866-9415-cf319b5dab3b", "tradeIv": "", "blockTradeId": "",
            "markPrice": "1183.54", "execPrice": "1190.15", "markIv": "", "orderQty": "0.1",
            "orderPrice": "1236.9", "execValue": "119.015", "execType": "Trade",
            "execQty": "0.1", "closedSize": "", "extraFees": "", "seq": 4688002127,
        }],
    },
    "retExtInfo": {}, "time": 1672283754510,
}  # fmt: skip

# docs/v5/position/close-pnl.mdx, response example (createdTime in ns, as printed there)
CLOSED_PNL = {
    "retCode": 0, "retMsg": "OK",
    "result": {
        "nextPageCursor": "5a373bfe-188d-4913-9c81-d57ab5be8068%3A1672214887231423699%2C5a373bfe-188d-4913-9c81-d57ab5be8068%3A1672214887231423699",
        "category": "linear",
        "list": [{
            "symbol": "ETHPERP", "orderType": "Market", "leverage": "3",
            "updatedTime": "1672214887236", "side": "Sell",
            "orderId": "5a373bfe-188d-4913-9c81-d57ab5be8068", "closedPnl": "-47.4065323",
            "avgEntryPrice": "1194.97516667", "qty": "3", "cumEntryValue": "3584.9255",
            "createdTime": "1672214887231423699", "orderPrice": "1122.95", "closedSize": "3",
            "avgExitPrice": "1180.59833333", "execType": "Trade", "fillCount": "4",
            "cumExitValue": "3541.795",
        }],
    },
    "retExtInfo": {}, "time": 1672284129153,
}  # fmt: skip

# docs/v5/account/wallet-balance.mdx, response example (a BTC row only)
WALLET = {
    "retCode": 0, "retMsg": "OK",
    "result": {"list": [{
        "totalEquity": "18070.32797922", "accountIMRate": "0.0101",
        "totalMarginBalance": "18070.32797922", "totalInitialMargin": "182.60183684",
        "accountType": "UNIFIED", "totalAvailableBalance": "17887.72614237", "accountMMRate": "0",
        "totalPerpUPL": "-0.11001349", "totalWalletBalance": "18070.43799271",
        "totalMaintenanceMargin": "0.38106773",
        "coin": [{
            "availableToBorrow": "2.5", "bonus": "0", "accruedInterest": "0",
            "availableToWithdraw": "0.805994", "totalOrderIM": "0", "equity": "0.805994",
            "totalPositionMM": "0", "usdValue": "12920.95352538", "unrealisedPnl": "0",
            "borrowAmount": "0", "totalPositionIM": "0", "walletBalance": "0.805994",
            "cumRealisedPnl": "0", "coin": "BTC",
        }],
    }]},
    "retExtInfo": {}, "time": 1672125441042,
}  # fmt: skip

TRADING_STOP = {"retCode": 0, "retMsg": "OK", "result": {}, "retExtInfo": {}, "time": 1672283125359}


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def page(payload: dict[str, Any], model: type[Any], kind: str) -> list[Any]:
    result = wire.result_of(payload, kind)
    return [wire.parse(model, raw, kind) for raw in wire.rows(result, kind)]


def test_open_order() -> None:
    (row,) = page(OPEN_ORDERS, wire.OrderRow, "order")
    order = wire.to_order(row)
    assert (order.venue_order_id, order.order_link_id) == (
        "fd4300ae-7847-404e-b947-b46980a4d140",
        "test-000005",
    )
    assert (order.side, order.order_type, order.status, order.is_open) == (
        Side.BUY,
        OrderType.LIMIT,
        OrderStatus.NEW,
        True,
    )
    assert (order.qty, order.price, order.filled_qty, order.fee) == (
        Decimal("0.10"),
        Decimal(1600),
        0,
        0,
    )
    assert order.avg_fill_price is None  # "0": nothing filled
    assert (order.take_profit, order.stop_loss) == (Decimal(2500), Decimal(1500))
    assert order.reject_reason is None and order.reduce_only is False and not order.duplicate
    assert (order.created_at, order.updated_at) == (ms(1684738540559), ms(1684738540561))


def test_market_order_has_no_price_and_a_filled_one_an_average() -> None:
    raw = dict(OPEN_ORDERS["result"]["list"][0], orderType="Market", orderStatus="Filled",
               avgPrice="1601.5", cumExecQty="0.10", cumExecFee="0.088", takeProfit="", stopLoss="0")  # fmt: skip
    order = wire.to_order(wire.parse(wire.OrderRow, raw, "order"))
    assert (order.price, order.avg_fill_price, order.fee) == (
        None,
        Decimal("1601.5"),
        Decimal("0.088"),
    )
    assert (order.take_profit, order.stop_loss, order.is_open) == (None, None, False)


def test_order_ack_and_empty_results() -> None:
    ack = wire.parse(wire.OrderAck, wire.result_of(ACK, "ack"), "ack")
    assert (ack.orderId, ack.orderLinkId) == ("c6f055d9-7f21-4079-913d-e6523a9cfffa", "linear-004")
    assert wire.result_of(TRADING_STOP, "trading_stop") == {}


def test_batch_results_are_parallel_lists() -> None:
    result = wire.batch_result(BATCH)
    assert [i.orderLinkId for i in result.items] == ["l-001", ""]
    assert [(c.code, c.msg) for c in result.codes] == [
        (0, "OK"),
        (110072, "OrderLinkedID is duplicate"),
    ]
    broken = dict(BATCH, retExtInfo={"list": [{"code": 0, "msg": "OK"}]})
    with pytest.raises(BadPayload, match="differ in length"):
        wire.batch_result(broken)


def test_position() -> None:
    (row,) = page(POSITIONS, wire.PositionRow, "position")
    pos = wire.to_position(row)
    assert pos is not None
    assert (pos.symbol, pos.side, pos.size, pos.avg_price) == (
        "BTCUSD",
        Side.SELL,
        Decimal(300),
        Decimal("27464.50441675"),
    )
    assert (pos.mark_price, pos.leverage, pos.unrealised_pnl) == (
        Decimal("28224.50"),
        Decimal(10),
        Decimal("-0.00029413"),
    )
    assert (pos.stop_loss, pos.take_profit, pos.liq_price) == (None, None, None)  # "0.00" and ""
    assert pos.updated_at == ms(1697673600012)
    assert pos.opened_at == ms(1676538056258)  # no openTime: the symbol's createdTime


@pytest.mark.parametrize("side", ["", "None"])
def test_a_flat_position_row_is_no_position(side: str) -> None:
    raw = dict(
        POSITIONS["result"]["list"][0], side=side, size="0", avgPrice="0", markPrice="28224.50"
    )
    assert wire.to_position(wire.parse(wire.PositionRow, raw, "position")) is None


def test_execution() -> None:
    (row,) = page(EXECUTIONS, wire.ExecutionRow, "execution")
    raw = EXECUTIONS["result"]["list"][0]  # type: ignore[index]
    fill = wire.to_fill(row)
    assert (fill.exec_id, fill.venue_order_id) == (
        "e0cbe81d-0f18-5866-9415-cf319b5dab3b",
        "8c065341-7b52-4ca9-ac2c-37e31ac55c94",
    )
    assert fill.order_link_id is None and fill.trigger is None  # "" and "UNKNOWN"
    assert (fill.side, fill.price, fill.qty, fill.fee) == (
        Side.BUY,
        Decimal("1190.15"),
        Decimal("0.1"),
        Decimal("0.071409"),
    )
    assert (fill.kind, fill.time) == (ExecKind.TRADE, ms(1672282722429))
    for stop_type, trigger in [
        ("StopLoss", Trigger.STOP_LOSS), ("PartialTakeProfit", Trigger.TAKE_PROFIT),
        ("TrailingStop", Trigger.TRAILING_STOP),
    ]:  # fmt: skip
        stop = dict(raw, stopOrderType=stop_type)
        assert wire.to_fill(wire.parse(wire.ExecutionRow, stop, "execution")).trigger is trigger
    for exec_type, kind in [
        ("BustTrade", ExecKind.LIQUIDATION), ("AdlTrade", ExecKind.ADL),
        ("Funding", ExecKind.FUNDING),
    ]:  # fmt: skip
        other = dict(raw, execType=exec_type)
        assert wire.to_fill(wire.parse(wire.ExecutionRow, other, "execution")).kind is kind


def test_closed_pnl_with_a_nanosecond_timestamp() -> None:
    (row,) = page(CLOSED_PNL, wire.ClosedPnlRow, "closed_pnl")
    pnl = wire.to_closed_pnl(row)
    assert (pnl.venue_order_id, pnl.side, pnl.qty) == (
        "5a373bfe-188d-4913-9c81-d57ab5be8068",
        Side.SELL,
        Decimal(3),
    )
    assert (pnl.avg_entry_price, pnl.avg_exit_price) == (
        Decimal("1194.97516667"),
        Decimal("1180.59833333"),
    )
    assert (pnl.closed_pnl, pnl.leverage) == (Decimal("-47.4065323"), Decimal(3))
    assert pnl.created_at == ms(1672214887231) and pnl.updated_at == ms(1672214887236)


def test_wallet_balance_uses_the_usdt_row_else_the_totals() -> None:
    page_ = wire.parse(wire.WalletPage, wire.result_of(WALLET, "wallet"), "wallet")
    equity = wire.to_equity(page_)  # the example holds BTC only: account totals
    assert (equity.equity, equity.balance, equity.unrealised_pnl) == (
        Decimal("18070.32797922"), Decimal("18070.43799271"), Decimal("-0.11001349"),
    )  # fmt: skip
    usdt = {"coin": "USDT", "equity": "1000.5", "walletBalance": "990", "unrealisedPnl": "10.5"}
    account = dict(WALLET["result"]["list"][0], coin=[usdt])  # type: ignore[index]
    equity = wire.to_equity(wire.parse(wire.WalletPage, {"list": [account]}, "wallet"))
    assert (equity.equity, equity.balance, equity.unrealised_pnl, equity.currency) == (
        Decimal("1000.5"), Decimal(990), Decimal("10.5"), "USDT",
    )  # fmt: skip


def test_bad_payloads_are_rejected_with_the_reason() -> None:
    raw = dict(EXECUTIONS["result"]["list"][0], execPrice="1,190.15")  # type: ignore[index]
    with pytest.raises(BadPayload, match="execPrice"):
        wire.parse(wire.ExecutionRow, raw, "execution")
    raw = dict(OPEN_ORDERS["result"]["list"][0], side="BUY")
    with pytest.raises(BadPayload, match="side"):
        wire.parse(wire.OrderRow, raw, "order")
    raw = dict(OPEN_ORDERS["result"]["list"][0], createdTime="yesterday")
    with pytest.raises(BadPayload, match="createdTime"):
        wire.parse(wire.OrderRow, raw, "order")
    with pytest.raises(BadPayload, match=r"result\.list missing"):
        wire.rows({"category": "linear"}, "order")


ORDER = OPEN_ORDERS["result"]["list"][0]  # type: ignore[index]
POSITION = POSITIONS["result"]["list"][0]  # type: ignore[index]
EXECUTION = EXECUTIONS["result"]["list"][0]  # type: ignore[index]


def without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != key}


@pytest.mark.parametrize(
    ("model", "raw", "field"),
    [
        (wire.OrderRow, without(ORDER, "avgPrice"), "avgPrice"),
        (wire.OrderRow, without(ORDER, "cumExecFee"), "cumExecFee"),
        (wire.OrderRow, without(ORDER, "cumExecQty"), "cumExecQty"),
        (wire.OrderRow, dict(ORDER, cumExecQty="0.05", avgPrice=""), "no avgPrice"),
        (wire.OrderRow, dict(ORDER, orderStatus="Pending"), "orderStatus"),
        (wire.OrderRow, dict(ORDER, orderType="UNKNOWN"), "orderType"),
        (wire.PositionRow, without(POSITION, "avgPrice"), "avgPrice"),
        (wire.PositionRow, dict(POSITION, avgPrice=""), "no avgPrice"),
        (wire.PositionRow, without(POSITION, "unrealisedPnl"), "unrealisedPnl"),
        (wire.PositionRow, dict(POSITION, side="None"), "side"),
        (wire.ExecutionRow, without(EXECUTION, "execFee"), "execFee"),
        (wire.ExecutionRow, dict(EXECUTION, execType="FutureSpread"), "execType"),
        (wire.ExecutionRow, dict(EXECUTION, stopOrderType="Whatever"), "stopOrderType"),
    ],
)
def test_a_missing_or_unknown_field_is_a_rejection_never_a_zero(
    model: type[Any], raw: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadPayload, match=field):
        wire.parse(model, raw, "row")


def test_an_unknown_unrealised_pnl_is_none_not_zero() -> None:
    pos = wire.to_position(wire.parse(wire.PositionRow, dict(POSITION, unrealisedPnl=""), "p"))
    assert pos is not None and pos.unrealised_pnl is None


# Error envelopes as Bybit sends them (HTTP 200, retCode != 0); pybit raises on them. The one
# translate() of the Bybit adapter serves market data and execution alike.
ERRORS = [
    ({"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}, "retExtInfo": {}, "time": 1}, Rejected),
    ({"retCode": 110072, "retMsg": "OrderLinkedID is duplicate", "result": {}, "retExtInfo": {}, "time": 1}, Rejected),
    ({"retCode": 110007, "retMsg": "ab not enough for new order", "result": {}, "retExtInfo": {}, "time": 1}, Rejected),
    ({"retCode": 10003, "retMsg": "API key is invalid.", "result": {}, "retExtInfo": {}, "time": 1}, AuthError),
    ({"retCode": 10004, "retMsg": "error sign! origin_string[...]", "result": {}, "retExtInfo": {}, "time": 1}, AuthError),
    ({"retCode": 10002, "retMsg": "invalid request, please check your server timestamp or recv_window param", "result": {}, "retExtInfo": {}, "time": 1}, TemporaryError),
    ({"retCode": 10006, "retMsg": "Too many visits", "result": {}, "retExtInfo": {}, "time": 1}, RateLimited),
    ({"retCode": 10016, "retMsg": "Internal System Error.", "result": {}, "retExtInfo": {}, "time": 1}, TemporaryError),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "kind"), ERRORS)
def test_error_envelopes(payload: dict[str, Any], kind: type[ExternalError]) -> None:
    with pytest.raises(BadPayload, match=f"retCode {payload['retCode']}"):
        wire.result_of(payload, "order_ack")  # never mistaken for a result
    exc = InvalidRequestError(
        request="POST /v5/order/create: {}", message=payload["retMsg"],
        status_code=payload["retCode"], time="00:00:00", resp_headers={},
    )  # fmt: skip
    err = translate(exc)
    assert type(err) is kind and err is not None
    assert err.code == payload["retCode"] and payload["retMsg"] in str(err)
    assert err.retryable == issubclass(kind, TemporaryError)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(502, TemporaryError), (503, TemporaryError), (429, RateLimited), (403, RateLimited),
     (401, AuthError), (404, Rejected)],
)  # fmt: skip
def test_http_failures(status: int, kind: type[ExternalError]) -> None:
    exc = FailedRequestError(
        request="GET /v5/position/list",
        message="Bad Gateway",
        status_code=status,
        time="00:00:00",
        resp_headers={},
    )
    err = translate(exc)
    assert type(err) is kind and err is not None and err.code == status
    if status == 403:  # the IP limit: one meaning, wherever it happens (docs: stop >= 10 min)
        assert isinstance(err, RateLimited) and err.retry_after_s == IP_BAN_WAIT_S


def test_transport_failures_are_temporary() -> None:
    assert isinstance(translate(requests.exceptions.ConnectionError("refused")), TemporaryError)
    assert isinstance(translate(requests.exceptions.ReadTimeout("slow")), TemporaryError)
    assert translate(KeyError("not a venue failure")) is None
