"""Bybit v5 private payloads (linear, unified account) as typed models, and their mapping to
the venue dataclasses. Pure: no I/O. Field names are Bybit's (docs/v5/order/create-order.mdx,
batch-place.mdx, open-order.mdx, execution.mdx; position/position.mdx, close-pnl.mdx;
account/wallet-balance.mdx). Numbers arrive as strings; Bybit writes "" or "0" for an unset
price, and "UNKNOWN" / "" for a stopOrderType that is not a stop.

Nothing from the wire is trusted: a payload that does not fit raises `BadPayload` (a
PermanentError of the adapters) with the reason and a snippet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from quantcore.adapters.errors import BadPayload
from quantcore.venues.base import (
    AccountEquity,
    ClosedPnl,
    Execution,
    VenueOrder,
    VenuePosition,
)

M = TypeVar("M", bound=BaseModel)
SNIPPET = 500
NOT_A_STOP = frozenset({"", "UNKNOWN"})


# --- field types ------------------------------------------------------------------------------------
def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(f"expected a number as a string, got {type(raw).__name__}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"not a number: {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def _optional(raw: Any) -> Decimal | None:
    """ "" (and None) → None: an absent figure."""
    if raw is None or raw == "":
        return None
    return _decimal(raw)


def _price_or_none(raw: Any) -> Decimal | None:
    """ "", "0", "0.00" → None: Bybit's way of saying 'no price' (TP/SL, liq, market orders)."""
    value = _optional(raw)
    return None if value is None or value == 0 else value


def _zero_if_empty(raw: Any) -> Decimal:
    value = _optional(raw)
    return Decimal(0) if value is None else value


def _time(raw: Any) -> datetime:
    """A Bybit timestamp: ms as a string or a number; some old records carry ns."""
    text = str(raw)
    if isinstance(raw, bool) or not text.isdigit() or len(text) > 22:
        raise ValueError(f"not a timestamp: {raw!r}")
    value = int(text)
    if len(text) > 16:
        value //= 1_000_000  # ns → ms
    return datetime.fromtimestamp(value / 1000, UTC)


Num = Annotated[Decimal, BeforeValidator(_decimal)]
OptNum = Annotated[Decimal | None, BeforeValidator(_optional)]
Price = Annotated[Decimal | None, BeforeValidator(_price_or_none)]
NumOrZero = Annotated[Decimal, BeforeValidator(_zero_if_empty)]
Time = Annotated[datetime, BeforeValidator(_time)]
SideStr = Literal["Buy", "Sell"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- envelope -------------------------------------------------------------------------------------------
class Envelope(_Wire):
    retCode: int
    retMsg: str = ""
    result: Any = None
    retExtInfo: Any = None
    time: int | None = None


class OrderAck(_Wire):
    """result of order/create, order/amend, order/cancel."""

    orderId: str
    orderLinkId: str = ""


class BatchItem(_Wire):
    """result.list[] of order/create-batch; a failed order has empty ids."""

    category: str = ""
    symbol: str = ""
    orderId: str = ""
    orderLinkId: str = ""
    createAt: str = ""


class BatchCode(_Wire):
    """retExtInfo.list[] of order/create-batch, parallel to result.list."""

    code: int
    msg: str = ""


class BatchResult(_Wire):
    items: list[BatchItem]
    codes: list[BatchCode]


class OrderRow(_Wire):
    """result.list[] of order/realtime."""

    orderId: str
    orderLinkId: str = ""
    symbol: str
    side: SideStr
    orderType: str
    price: Price = None
    qty: Num
    orderStatus: str
    avgPrice: Price = None
    cumExecQty: NumOrZero = Decimal(0)
    cumExecFee: NumOrZero = Decimal(0)
    stopOrderType: str = ""
    takeProfit: Price = None
    stopLoss: Price = None
    reduceOnly: bool = False
    rejectReason: str = ""
    createdTime: Time
    updatedTime: Time


class OrderPage(_Wire):
    list: list[OrderRow]
    nextPageCursor: str = ""


class PositionRow(_Wire):
    """result.list[] of position/list; side "" (or "None") and size "0" when flat."""

    symbol: str
    side: str = ""
    size: Num
    avgPrice: NumOrZero = Decimal(0)
    markPrice: Price = None
    leverage: OptNum = None
    unrealisedPnl: NumOrZero = Decimal(0)
    takeProfit: Price = None
    stopLoss: Price = None
    liqPrice: Price = None
    positionIdx: int = 0
    updatedTime: Time


class PositionPage(_Wire):
    list: list[PositionRow]
    nextPageCursor: str = ""


class ExecutionRow(_Wire):
    """result.list[] of execution/list (newest first)."""

    execId: str
    orderId: str
    orderLinkId: str = ""
    symbol: str
    side: SideStr
    execPrice: Num
    execQty: Num
    execFee: NumOrZero = Decimal(0)
    execTime: Time
    execType: str = "Trade"
    stopOrderType: str = ""
    seq: int | None = None  # cross sequence: orders fills of the same execTime


class ExecutionPage(_Wire):
    list: list[ExecutionRow]
    nextPageCursor: str = ""


class ClosedPnlRow(_Wire):
    """result.list[] of position/closed-pnl (newest first)."""

    orderId: str
    symbol: str
    side: SideStr
    qty: Num
    closedSize: OptNum = None
    avgEntryPrice: Num
    avgExitPrice: Num
    closedPnl: Num
    leverage: OptNum = None
    createdTime: Time
    updatedTime: Time


class ClosedPnlPage(_Wire):
    list: list[ClosedPnlRow]
    nextPageCursor: str = ""


class WalletCoin(_Wire):
    coin: str
    equity: NumOrZero = Decimal(0)
    walletBalance: NumOrZero = Decimal(0)
    unrealisedPnl: NumOrZero = Decimal(0)


class WalletAccount(_Wire):
    accountType: str = ""
    totalEquity: OptNum = None
    totalWalletBalance: OptNum = None
    totalPerpUPL: OptNum = None
    coin: list[WalletCoin] = Field(default_factory=list)


class WalletPage(_Wire):
    list: list[WalletAccount]


# --- parsing ----------------------------------------------------------------------------------------------
def snippet(raw: Any) -> str:
    try:
        text = json.dumps(raw, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(raw)
    return text[:SNIPPET]


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
    )[:300]


def parse(model: type[M], raw: Any, kind: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadPayload(kind, snippet(raw), _reason(exc)) from None


def result_of(payload: Any, kind: str) -> Any:
    """The `result` of a successful envelope (pybit already raised on retCode != 0)."""
    env = parse(Envelope, payload, kind)
    if env.retCode != 0:
        raise BadPayload(kind, snippet(payload), f"retCode {env.retCode}: {env.retMsg}")
    return env.result


def batch_result(payload: Any) -> BatchResult:
    env = parse(Envelope, payload, "batch_order")
    items = env.result.get("list") if isinstance(env.result, dict) else None
    codes = env.retExtInfo.get("list") if isinstance(env.retExtInfo, dict) else None
    parsed = parse(BatchResult, {"items": items, "codes": codes}, "batch_order")
    if len(parsed.items) != len(parsed.codes):
        raise BadPayload(
            "batch_order", snippet(payload), "result.list and retExtInfo.list differ in length"
        )
    return parsed


# --- to the venue dataclasses ------------------------------------------------------------------------------
def to_order(row: OrderRow, raw: dict[str, Any], *, duplicate: bool = False) -> VenueOrder:
    order_type: Literal["Market", "Limit"] = "Market" if row.orderType == "Market" else "Limit"
    return VenueOrder(
        order_link_id=row.orderLinkId,
        venue_order_id=row.orderId,
        symbol=row.symbol,
        side=row.side,
        order_type=order_type,
        qty=row.qty,
        price=row.price if order_type == "Limit" else None,
        status=row.orderStatus,
        filled_qty=row.cumExecQty,
        avg_fill_price=row.avgPrice,
        fee=row.cumExecFee,
        reduce_only=row.reduceOnly,
        created_at=row.createdTime,
        updated_at=row.updatedTime,
        stop_loss=row.stopLoss,
        take_profit=row.takeProfit,
        reject_reason=None if row.rejectReason in ("", "EC_NoError") else row.rejectReason,
        duplicate=duplicate,
        raw=raw,
    )


def to_position(row: PositionRow, raw: dict[str, Any]) -> VenuePosition | None:
    """None for a flat row (size 0 / side '')."""
    if row.size <= 0 or row.side not in ("Buy", "Sell"):
        return None
    side: SideStr = "Buy" if row.side == "Buy" else "Sell"
    return VenuePosition(
        symbol=row.symbol,
        side=side,
        size=row.size,
        avg_price=row.avgPrice,
        mark_price=row.markPrice,
        leverage=row.leverage if row.leverage is not None else Decimal(0),
        unrealised_pnl=row.unrealisedPnl,
        stop_loss=row.stopLoss,
        take_profit=row.takeProfit,
        liq_price=row.liqPrice,
        updated_at=row.updatedTime,
        raw=raw,
    )


def to_execution(row: ExecutionRow, raw: dict[str, Any]) -> Execution:
    return Execution(
        exec_id=row.execId,
        venue_order_id=row.orderId,
        order_link_id=row.orderLinkId or None,
        symbol=row.symbol,
        side=row.side,
        price=row.execPrice,
        qty=row.execQty,
        fee=row.execFee,
        time=row.execTime,
        exec_type=row.execType,
        stop_order_type=None if row.stopOrderType in NOT_A_STOP else row.stopOrderType,
        raw=raw,
    )


def to_closed_pnl(row: ClosedPnlRow, raw: dict[str, Any]) -> ClosedPnl:
    return ClosedPnl(
        venue_order_id=row.orderId,
        symbol=row.symbol,
        side=row.side,
        qty=row.closedSize if row.closedSize is not None else row.qty,
        avg_entry_price=row.avgEntryPrice,
        avg_exit_price=row.avgExitPrice,
        closed_pnl=row.closedPnl,
        leverage=row.leverage if row.leverage is not None else Decimal(0),
        created_at=row.createdTime,
        updated_at=row.updatedTime,
        raw=raw,
    )


def to_equity(page: WalletPage, coin: str = "USDT") -> AccountEquity:
    """The USDT row of the unified account (equity, wallet balance, unrealised PnL); the
    account totals (USD) when the coin row is absent."""
    if not page.list:
        raise BadPayload("wallet_balance", "", "no account in result.list")
    account = page.list[0]
    for row in account.coin:
        if row.coin == coin:
            return AccountEquity(row.equity, row.walletBalance, row.unrealisedPnl, coin)
    if account.totalEquity is None or account.totalWalletBalance is None:
        raise BadPayload("wallet_balance", "", f"no {coin} row and no account totals")
    upl = account.totalPerpUPL if account.totalPerpUPL is not None else Decimal(0)
    return AccountEquity(account.totalEquity, account.totalWalletBalance, upl, coin)


def rows(page_raw: Any, kind: str) -> list[dict[str, Any]]:
    """The raw list items of a page (kept on the dataclasses as `raw`)."""
    items = page_raw.get("list") if isinstance(page_raw, dict) else None
    if not isinstance(items, list):
        raise BadPayload(kind, snippet(page_raw), "result.list missing")
    return [i if isinstance(i, dict) else {} for i in items]
