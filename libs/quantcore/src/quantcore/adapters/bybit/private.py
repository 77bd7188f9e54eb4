"""Bybit v5 private payloads (linear, unified account) as typed models, and their translation
into our vocabulary (`quantcore.model.trading`): Bybit's words stop here. Pure: no I/O. Field names are Bybit's (docs/v5/order/create-order.mdx,
batch-place.mdx, open-order.mdx, execution.mdx; position/position.mdx, close-pnl.mdx;
account/wallet-balance.mdx). Numbers arrive as strings; Bybit writes "" or "0" for an unset
price, and "UNKNOWN" / "" for a stopOrderType that is not a stop.

Nothing from the wire is trusted: a payload that does not fit raises `BadPayload` (a
PermanentError of quantcore.errors) with the reason and a snippet. A figure we use that the venue
left out is a rejection, never a zero: a filled order without an average price, an order
without its cumulative fee, an open position without its entry price.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from quantcore.adapters.bybit.parse import reason, snippet
from quantcore.errors import BadPayload
from quantcore.model.trading import (
    AccountEquity,
    ClosedPnl,
    ExecKind,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    Trigger,
)

M = TypeVar("M", bound=BaseModel)

# --- Bybit's words → ours (docs/v5/enum.mdx: side, orderStatus, execType, stopOrderType) ---------
SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
ORDER_TYPES = {"Market": OrderType.MARKET, "Limit": OrderType.LIMIT}
ORDER_STATUSES = {
    "Created": OrderStatus.NEW,  # accepted by the system, not yet by the matching engine
    "New": OrderStatus.NEW,
    "Active": OrderStatus.NEW,  # a triggered conditional, now a live order
    "Triggered": OrderStatus.NEW,
    "Untriggered": OrderStatus.TRIGGER_PENDING,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "PartiallyFilledCanceled": OrderStatus.CANCELLED,  # filled_qty says how much filled
    "Deactivated": OrderStatus.CANCELLED,  # a conditional cancelled before it triggered
    "Rejected": OrderStatus.REJECTED,
}
EXEC_KINDS = {
    "Trade": ExecKind.TRADE,
    "Funding": ExecKind.FUNDING,
    "BustTrade": ExecKind.LIQUIDATION,
    "AdlTrade": ExecKind.ADL,
    "Settle": ExecKind.SETTLEMENT,
    "Delivery": ExecKind.SETTLEMENT,
}
TRIGGERS: dict[str, Trigger | None] = {
    "": None,
    "UNKNOWN": None,  # a plain order
    "TakeProfit": Trigger.TAKE_PROFIT,
    "PartialTakeProfit": Trigger.TAKE_PROFIT,
    "StopLoss": Trigger.STOP_LOSS,
    "PartialStopLoss": Trigger.STOP_LOSS,
    "TrailingStop": Trigger.TRAILING_STOP,
    "Stop": Trigger.CONDITIONAL,
    "tpslOrder": Trigger.CONDITIONAL,
    "OcoOrder": Trigger.CONDITIONAL,
    "BidirectionalTpslOrder": Trigger.CONDITIONAL,
    "MmRateClose": Trigger.CONDITIONAL,
}


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


def _word(table: dict[str, Any], what: str) -> Any:
    def parse(raw: Any) -> Any:
        if not isinstance(raw, str) or raw not in table:
            raise ValueError(f"unknown Bybit {what} {raw!r}")
        return table[raw]

    return BeforeValidator(parse)


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
Time = Annotated[datetime, BeforeValidator(_time)]
# ours → Bybit's, for requests
BYBIT_SIDE = {ours: theirs for theirs, ours in SIDES.items()}
BYBIT_ORDER_TYPE = {ours: theirs for theirs, ours in ORDER_TYPES.items()}
BYBIT_TIME_IN_FORCE = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.POST_ONLY: "PostOnly",
}
WireSide = Annotated[Side, _word(SIDES, "side")]
WireOrderType = Annotated[OrderType, _word(ORDER_TYPES, "orderType")]
WireStatus = Annotated[OrderStatus, _word(ORDER_STATUSES, "orderStatus")]
WireExecKind = Annotated[ExecKind, _word(EXEC_KINDS, "execType")]
WireTrigger = Annotated[Trigger | None, _word(TRIGGERS, "stopOrderType")]


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
    """result.list[] of order/realtime. avgPrice is "" (UTA) or "0" (classic) until a fill."""

    orderId: str
    orderLinkId: str = ""
    symbol: str
    side: WireSide
    orderType: WireOrderType
    price: Price
    qty: Num
    orderStatus: WireStatus
    avgPrice: Price
    cumExecQty: Num
    cumExecFee: Num
    stopOrderType: WireTrigger = None
    takeProfit: Price = None
    stopLoss: Price = None
    reduceOnly: bool = False
    rejectReason: str = ""
    createdTime: Time
    updatedTime: Time

    @model_validator(mode="after")
    def _filled_has_price(self) -> OrderRow:
        if self.cumExecQty > 0 and self.avgPrice is None:
            raise ValueError(f"cumExecQty {self.cumExecQty} filled but no avgPrice")
        return self


class OrderPage(_Wire):
    list: list[OrderRow]
    nextPageCursor: str = ""


class PositionRow(_Wire):
    """result.list[] of position/list; side "" (or "None") and size "0" when flat."""

    symbol: str
    side: str
    size: Num
    avgPrice: OptNum
    markPrice: Price = None
    leverage: OptNum = None
    unrealisedPnl: OptNum  # "" → None (unknown), never 0
    takeProfit: Price = None
    stopLoss: Price = None
    liqPrice: Price = None
    positionIdx: int = 0
    createdTime: Time | None = None  # first time a position was created on this symbol
    openTime: Time | None = None  # this position's open time, where Bybit sends it
    updatedTime: Time

    @model_validator(mode="after")
    def _open_is_complete(self) -> PositionRow:
        if self.size <= 0:
            return self
        if self.side not in SIDES:
            raise ValueError(f"size {self.size} open but side is {self.side!r}")
        if self.avgPrice is None or self.avgPrice <= 0:
            raise ValueError(f"size {self.size} open but no avgPrice")
        return self


class PositionPage(_Wire):
    list: list[PositionRow]
    nextPageCursor: str = ""


class ExecutionRow(_Wire):
    """result.list[] of execution/list (newest first)."""

    execId: str
    orderId: str
    orderLinkId: str = ""
    symbol: str
    side: WireSide
    execPrice: Num
    execQty: Num
    execFee: Num
    execTime: Time
    execType: WireExecKind
    stopOrderType: WireTrigger = None
    seq: int | None = None  # cross sequence: orders fills of the same execTime


class ExecutionPage(_Wire):
    list: list[ExecutionRow]
    nextPageCursor: str = ""


class ClosedPnlRow(_Wire):
    """result.list[] of position/closed-pnl (newest first)."""

    orderId: str
    symbol: str
    side: WireSide
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
    equity: Num
    walletBalance: Num
    unrealisedPnl: Num


class WalletAccount(_Wire):
    accountType: str = ""
    totalEquity: OptNum = None
    totalWalletBalance: OptNum = None
    totalPerpUPL: OptNum = None
    coin: list[WalletCoin] = Field(default_factory=list)


class WalletPage(_Wire):
    list: list[WalletAccount]


# --- parsing ----------------------------------------------------------------------------------------------
def parse(model: type[M], raw: Any, kind: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadPayload(kind, snippet(raw), reason(exc)) from None


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


# --- to our records -----------------------------------------------------------------------------------------
def to_order(row: OrderRow, *, duplicate: bool = False) -> Order:
    return Order(
        order_link_id=row.orderLinkId,
        venue_order_id=row.orderId,
        symbol=row.symbol,
        side=row.side,
        order_type=row.orderType,
        qty=row.qty,
        price=row.price if row.orderType is OrderType.LIMIT else None,
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
    )


def to_position(row: PositionRow) -> Position | None:
    """None for a flat row (size 0); an open row is complete (the row's validator saw to it)."""
    if row.size <= 0 or row.avgPrice is None:
        return None
    return Position(
        symbol=row.symbol,
        side=SIDES[row.side],
        size=row.size,
        avg_price=row.avgPrice,
        mark_price=row.markPrice,
        leverage=row.leverage,
        unrealised_pnl=row.unrealisedPnl,
        stop_loss=row.stopLoss,
        take_profit=row.takeProfit,
        liq_price=row.liqPrice,
        updated_at=row.updatedTime,
        opened_at=row.openTime or row.createdTime,
    )


def to_fill(row: ExecutionRow) -> Fill:
    return Fill(
        exec_id=row.execId,
        venue_order_id=row.orderId,
        order_link_id=row.orderLinkId or None,
        symbol=row.symbol,
        side=row.side,
        price=row.execPrice,
        qty=row.execQty,
        fee=row.execFee,
        time=row.execTime,
        kind=row.execType,
        trigger=row.stopOrderType,
    )


def to_closed_pnl(row: ClosedPnlRow) -> ClosedPnl:
    return ClosedPnl(
        venue_order_id=row.orderId,
        symbol=row.symbol,
        side=row.side,
        qty=row.closedSize if row.closedSize is not None else row.qty,
        avg_entry_price=row.avgEntryPrice,
        avg_exit_price=row.avgExitPrice,
        closed_pnl=row.closedPnl,
        leverage=row.leverage,
        created_at=row.createdTime,
        updated_at=row.updatedTime,
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
    if account.totalPerpUPL is None:
        raise BadPayload("wallet_balance", "", f"no {coin} row and no totalPerpUPL")
    return AccountEquity(
        account.totalEquity, account.totalWalletBalance, account.totalPerpUPL, coin
    )


def rows(page: Any, kind: str) -> list[Any]:
    """The items of a page's result.list, each to be parsed on its own (one bad row is skipped
    and reported, the others go through)."""
    items = page.get("list") if isinstance(page, dict) else None
    if not isinstance(items, list):
        raise BadPayload(kind, snippet(page), "result.list missing")
    return items
