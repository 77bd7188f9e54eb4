"""A small linear-perpetuals exchange driven by the simulated market (pure model, no I/O).

Accounts in Bybit's unified (UTA, cross margin, one-way mode) style: USDT wallet, positions
with `positionIdx` 0, orders, executions and closed-PnL records, in Bybit v5 vocabulary so the
simulator can serve them in the real wire shapes. Money is Decimal.

Matching: a Market order fills at once at the last price ± slippage as taker; a Limit order
that is marketable when placed (or amended) fills the same way, capped at its price; otherwise
it rests and fills at its price, as maker, once the market trades *through* it (a Buy when the
low goes below the price, a Sell when the high goes above). Orders fill whole. TP/SL are
Full-mode position stops (conditional orders in status `Untriggered`) that trigger on the last
price range (or the mark) and close the whole position with a market execution whose
`stopOrderType` is StopLoss / TakeProfit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

from quantcore.math import matching
from quantcore.model.trading import Side as OurSide
from quantcore.model.trading import Trigger

Side = Literal["Buy", "Sell"]
StopKind = Literal["StopLoss", "TakeProfit"]
TriggerBy = Literal["LastPrice", "MarkPrice", "IndexPrice"]
ZERO = Decimal(0)
ONE = Decimal(1)
MMR = Decimal("0.005")  # maintenance margin rate used for the liquidation estimate
DEFAULT_LEVERAGE = Decimal(10)
CLOSED_KEPT = 500  # closed orders served by order/realtime per account, as Bybit keeps
OPEN_STATUSES = ("New", "PartiallyFilled", "Untriggered")

# Bybit retCodes the exchange raises (docs/v5/error.mdx)
PARAMS = 10001
ORDER_NOT_FOUND = 110001
INSUFFICIENT_AVAILABLE = 110007
REDUCE_ONLY_RULE = 110017
LEVERAGE_NOT_MODIFIED = 110043
DUPLICATE_LINK_ID = 110072
NOT_MODIFIED = 34040


class ExchangeError(Exception):
    """A request the exchange refuses: `code` is the Bybit retCode, `message` its retMsg."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Instrument:
    symbol: str
    tick: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    max_leverage: Decimal

    def round_price(self, price: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
        ticks = (price / self.tick).to_integral_value(rounding=rounding)
        return max(ticks, ONE) * self.tick

    def on_tick(self, price: Decimal) -> bool:
        return price > 0 and price % self.tick == 0

    def on_step(self, qty: Decimal) -> bool:
        return qty > 0 and qty % self.qty_step == 0


@dataclass(frozen=True)
class Quote:
    """The market of one symbol at one moment: last and mark price, and the range traded
    since the previous quote (fills and triggers look at the range, not only the last)."""

    last: Decimal
    mark: Decimal
    high: Decimal
    low: Decimal


@dataclass(frozen=True)
class Fees:
    taker: Decimal = Decimal("0.00055")
    maker: Decimal = Decimal("0.0002")
    slippage: Decimal = Decimal("0.0002")


@dataclass(frozen=True)
class OrderParams:
    """A create request, already typed (the HTTP layer parses the strings)."""

    symbol: str
    side: Side
    order_type: Literal["Market", "Limit"]
    qty: Decimal
    price: Decimal | None = None
    time_in_force: Literal["GTC", "IOC", "FOK", "PostOnly"] = "GTC"
    order_link_id: str = ""
    reduce_only: bool = False
    close_on_trigger: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: TriggerBy = "LastPrice"
    sl_trigger_by: TriggerBy = "LastPrice"


@dataclass
class SimOrder:
    order_id: str
    order_link_id: str
    symbol: str
    side: Side
    order_type: Literal["Market", "Limit"]
    qty: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    close_on_trigger: bool
    created_ms: int
    updated_ms: int
    status: str = "New"
    cum_exec_qty: Decimal = ZERO
    cum_exec_value: Decimal = ZERO
    cum_exec_fee: Decimal = ZERO
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_trigger_by: TriggerBy = "LastPrice"
    sl_trigger_by: TriggerBy = "LastPrice"
    stop_order_type: str = ""  # '' | StopLoss | TakeProfit
    trigger_price: Decimal | None = None
    trigger_by: TriggerBy = "LastPrice"
    create_type: str = "CreateByUser"
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> Decimal | None:
        if self.cum_exec_qty <= 0:
            return None
        return self.cum_exec_value / self.cum_exec_qty

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.cum_exec_qty if self.is_open else ZERO


@dataclass
class SimPosition:
    symbol: str
    side: Side | None = None  # None: flat
    size: Decimal = ZERO
    avg_price: Decimal = ZERO
    open_fee: Decimal = ZERO  # entry fees of the size still open (for closed PnL)
    cum_realised_pnl: Decimal = ZERO
    cur_realised_pnl: Decimal = ZERO
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = -1
    tp_order_id: str | None = None
    sl_order_id: str | None = None

    @property
    def direction(self) -> int:
        return 0 if self.side is None else (1 if self.side == "Buy" else -1)


@dataclass(frozen=True)
class SimExecution:
    exec_id: str
    order: SimOrder  # a snapshot of the order after this fill
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    mark_price: Decimal
    closed_size: Decimal
    time_ms: int
    seq: int


@dataclass(frozen=True)
class SimClosedPnl:
    order: SimOrder
    closed_size: Decimal
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    closed_pnl: Decimal
    open_fee: Decimal
    close_fee: Decimal
    leverage: Decimal
    time_ms: int


@dataclass
class SimAccount:
    key: str
    wallet: Decimal
    orders: dict[str, SimOrder] = field(default_factory=dict)  # every order ever, by id
    by_link: dict[str, str] = field(default_factory=dict)  # orderLinkId → orderId
    positions: dict[str, SimPosition] = field(default_factory=dict)
    leverage: dict[str, Decimal] = field(default_factory=dict)
    executions: list[SimExecution] = field(default_factory=list)  # oldest first
    closed_pnl: list[SimClosedPnl] = field(default_factory=list)  # oldest first
    seq: int = 0

    def position(self, symbol: str) -> SimPosition:
        return self.positions.setdefault(symbol, SimPosition(symbol))

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open]

    def find(self, order_id: str | None, order_link_id: str | None) -> SimOrder | None:
        """orderId wins over orderLinkId, as at Bybit."""
        if order_id:
            return self.orders.get(order_id)
        if order_link_id and order_link_id in self.by_link:
            return self.orders.get(self.by_link[order_link_id])
        return None


def _ours(side: Side) -> OurSide:
    """Bybit's side word (the simulator speaks Bybit's wire) → ours, for the matching rules."""
    return OurSide.BUY if side == "Buy" else OurSide.SELL


def _opposite(side: Side) -> Side:
    return "Sell" if side == "Buy" else "Buy"


class SimExchange:
    """Every simulated account, matched against one stream of quotes."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        fees: Fees | None = None,
        starting_wallet: Decimal = Decimal(10_000),
    ) -> None:
        self.instruments = dict(instruments)
        self.fees = fees or Fees()
        self.starting_wallet = starting_wallet
        self.accounts: dict[str, SimAccount] = {}
        self.quotes: dict[str, Quote] = {}

    # --- accounts and prices -------------------------------------------------------------------
    def leverage_of(self, acc: SimAccount, symbol: str) -> Decimal:
        """The account's leverage on a symbol (default: 10, or the symbol's max if lower)."""
        if symbol in acc.leverage:
            return acc.leverage[symbol]
        return min(DEFAULT_LEVERAGE, self.instrument(symbol).max_leverage)

    def account(self, key: str) -> SimAccount:
        if key not in self.accounts:
            self.accounts[key] = SimAccount(key, self.starting_wallet)
        return self.accounts[key]

    def instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise ExchangeError(PARAMS, "params error: symbol invalid")
        return inst

    def quote(self, symbol: str) -> Quote:
        q = self.quotes.get(symbol)
        if q is None:
            raise ExchangeError(PARAMS, f"params error: no market for {symbol}")
        return q

    def symbols_in_use(self) -> set[str]:
        """Symbols with an open order or a position in any account (the ones to quote)."""
        used: set[str] = set()
        for acc in self.accounts.values():
            used.update(o.symbol for o in acc.orders.values() if o.is_open)
            used.update(s for s, p in acc.positions.items() if p.size > 0)
        return used

    def on_quotes(self, quotes: Mapping[str, Quote], now_ms: int) -> None:
        """New prices: resting limits that were traded through fill, TP/SL that were
        reached trigger."""
        self.quotes.update(quotes)
        for acc in self.accounts.values():
            for symbol, q in quotes.items():
                self._match_symbol(acc, symbol, q, now_ms)

    def _match_symbol(self, acc: SimAccount, symbol: str, q: Quote, now_ms: int) -> None:
        resting = sorted(
            (
                o
                for o in acc.orders.values()
                if o.symbol == symbol and o.status == "New" and o.order_type == "Limit"
            ),
            key=lambda o: o.created_ms,
        )
        for order in resting:
            assert order.price is not None
            through = q.low < order.price if order.side == "Buy" else q.high > order.price
            if through:
                self._fill(acc, order, order.price, maker=True, now_ms=now_ms)
        self._check_stops(acc, symbol, q, now_ms)

    # --- placing -------------------------------------------------------------------------------
    def place(self, acc: SimAccount, p: OrderParams, now_ms: int) -> SimOrder:
        inst = self.instrument(p.symbol)
        if p.order_link_id and p.order_link_id in acc.by_link:
            raise ExchangeError(DUPLICATE_LINK_ID, "OrderLinkedID is duplicate")
        if not inst.on_step(p.qty):
            raise ExchangeError(PARAMS, "Qty invalid")
        if p.qty < inst.min_qty:
            raise ExchangeError(PARAMS, "The number of contracts exceeds minimum limit allowed")
        if p.qty > inst.max_qty:
            raise ExchangeError(PARAMS, "The number of contracts exceeds maximum limit allowed")
        if p.order_type == "Limit":
            if p.price is None:
                raise ExchangeError(PARAMS, "params error: price is required for a Limit order")
            if not inst.on_tick(p.price):
                raise ExchangeError(PARAMS, "params error: price invalid")
        q = self.quote(p.symbol)
        pos = acc.position(p.symbol)
        if p.reduce_only:
            if p.take_profit is not None or p.stop_loss is not None:
                raise ExchangeError(PARAMS, "TP/SL cannot be set on a reduce-only order")
            if pos.size == 0 or pos.side == p.side:
                raise ExchangeError(
                    REDUCE_ONLY_RULE, "current position is zero, cannot fix reduce-only order qty"
                )
        base = p.price if p.order_type == "Limit" and p.price is not None else q.last
        self._check_tpsl(p.side, base, p.take_profit, p.stop_loss, "LastPrice")
        if not p.reduce_only:
            self._check_margin(acc, p, base)
        order = SimOrder(
            order_id=str(uuid.uuid4()),
            order_link_id=p.order_link_id,
            symbol=p.symbol,
            side=p.side,
            order_type=p.order_type,
            qty=p.qty,
            price=p.price if p.order_type == "Limit" else self._market_bound(inst, p.side, q),
            time_in_force="IOC" if p.order_type == "Market" else p.time_in_force,
            reduce_only=p.reduce_only,
            close_on_trigger=p.close_on_trigger,
            created_ms=now_ms,
            updated_ms=now_ms,
            take_profit=p.take_profit,
            stop_loss=p.stop_loss,
            tp_trigger_by=p.tp_trigger_by,
            sl_trigger_by=p.sl_trigger_by,
            last_price_on_created=q.last,
        )
        acc.orders[order.order_id] = order
        if order.order_link_id:
            acc.by_link[order.order_link_id] = order.order_id
        self._execute_new(acc, order, q, now_ms)
        return order

    def _market_bound(self, inst: Instrument, side: Side, q: Quote) -> Decimal:
        """The worst price a taker fill may get now: last ± slippage, on the tick."""
        price = matching.taker_price(_ours(side), q.last, self.fees.slippage)
        return inst.round_price(price, ROUND_CEILING if side == "Buy" else ROUND_FLOOR)

    def _execute_new(self, acc: SimAccount, order: SimOrder, q: Quote, now_ms: int) -> None:
        inst = self.instruments[order.symbol]
        taker_price = self._market_bound(inst, order.side, q)
        if order.order_type == "Market":
            self._fill(acc, order, taker_price, maker=False, now_ms=now_ms)
            return
        assert order.price is not None
        marketable = matching.marketable(_ours(order.side), order.price, q.last)
        if marketable:
            if order.time_in_force == "PostOnly":
                self._cancel(order, now_ms, "CancelByUser", "EC_PostOnlyWillTakeLiquidity")
                return
            price = (
                min(order.price, taker_price)
                if order.side == "Buy"
                else max(order.price, taker_price)
            )
            self._fill(acc, order, price, maker=False, now_ms=now_ms)
        elif order.time_in_force in ("IOC", "FOK"):
            self._cancel(order, now_ms, "CancelByUser", "EC_NoImmediateQtyToFill")

    def _check_margin(self, acc: SimAccount, p: OrderParams, base: Decimal) -> None:
        pos = acc.position(p.symbol)
        held = _ours(pos.side) if pos.side is not None else None
        opening = matching.opening_qty(held, pos.size, _ours(p.side), p.qty)
        if opening == 0:
            return
        lev = self.leverage_of(acc, p.symbol)
        cost = matching.order_cost(opening, base, lev, self.fees.taker)
        if cost > self.available(acc):
            raise ExchangeError(INSUFFICIENT_AVAILABLE, "ab not enough for new order")

    def _check_tpsl(
        self,
        side: Side,
        base: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        trigger_by: str,
    ) -> None:
        """Bybit's rule: a long's TP above and SL below the base price, a short's reversed."""
        up = side == "Buy"
        if take_profit is not None and take_profit > 0 and (take_profit <= base) == up:
            where = "higher" if up else "lower"
            raise ExchangeError(
                PARAMS,
                f"TakeProfit:{take_profit} set for {side} position should be {where} than "
                f"base_price:{base}??{trigger_by}",
            )
        if stop_loss is not None and stop_loss > 0 and (stop_loss >= base) == up:
            where = "lower" if up else "higher"
            raise ExchangeError(
                PARAMS,
                f"StopLoss:{stop_loss} set for {side} position should be {where} than "
                f"base_price:{base}??{trigger_by}",
            )

    # --- fills -----------------------------------------------------------------------------------
    def _fill(
        self, acc: SimAccount, order: SimOrder, price: Decimal, *, maker: bool, now_ms: int
    ) -> None:
        pos = acc.position(order.symbol)
        qty = order.qty - order.cum_exec_qty
        if order.reduce_only or order.stop_order_type:
            if pos.size == 0 or pos.side == order.side:
                self._cancel(order, now_ms, "CancelByReduceOnly", "EC_ReduceOnlyOrderQtyNotZero")
                return
            qty = min(qty, pos.size)
            if order.stop_order_type:
                order.qty = qty  # a Full TP/SL closes what the position holds when it fires
        rate = self.fees.maker if maker else self.fees.taker
        fee = matching.fee(qty, price, rate)
        acc.wallet -= fee
        acc.seq += 1
        closed = self._apply_to_position(acc, pos, order, qty, price, fee, now_ms)
        order.cum_exec_qty += qty
        order.cum_exec_value += qty * price
        order.cum_exec_fee += fee
        order.updated_ms = now_ms
        if order.cum_exec_qty >= order.qty:
            order.status = "Filled"
        q = self.quotes.get(order.symbol)
        acc.executions.append(
            SimExecution(
                exec_id=str(uuid.uuid4()),
                order=replace(order),
                price=price,
                qty=qty,
                fee=fee,
                fee_rate=rate,
                is_maker=maker,
                mark_price=q.mark if q else price,
                closed_size=closed,
                time_ms=now_ms,
                seq=acc.seq,
            )
        )
        if pos.size > 0 and closed == 0 and (order.take_profit or order.stop_loss):
            self._set_stops(acc, pos, order.take_profit, order.stop_loss, order, now_ms)
        if pos.size == 0:
            self._deactivate_stops(acc, pos, now_ms)

    def _apply_to_position(
        self,
        acc: SimAccount,
        pos: SimPosition,
        order: SimOrder,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        now_ms: int,
    ) -> Decimal:
        """Move the position by one fill; returns the size it closed (and books closed PnL)."""
        pos.updated_ms = now_ms
        pos.seq = acc.seq
        held = _ours(pos.side) if pos.side is not None and pos.size > 0 else None
        change = matching.apply_fill(held, pos.size, pos.avg_price, _ours(order.side), qty, price)
        if change.closed_qty == 0:
            if pos.size == 0:
                pos.side, pos.created_ms, pos.cur_realised_pnl = order.side, now_ms, ZERO
            pos.size, pos.avg_price = change.size, change.avg_price
            pos.open_fee += fee
            pos.cum_realised_pnl -= fee
            pos.cur_realised_pnl -= fee
            return ZERO
        closed = change.closed_qty
        opened = change.size if change.flipped else ZERO
        close_fee, open_fee = matching.split_fee(fee, closed, qty)
        open_part = pos.open_fee * closed / pos.size
        gross = change.realised
        acc.wallet += gross
        pos.cum_realised_pnl += gross - close_fee
        pos.cur_realised_pnl += gross - close_fee
        acc.closed_pnl.append(
            SimClosedPnl(
                order=replace(order),
                closed_size=closed,
                avg_entry_price=pos.avg_price,
                avg_exit_price=price,
                closed_pnl=gross - open_part - close_fee,
                open_fee=open_part,
                close_fee=close_fee,
                leverage=self.leverage_of(acc, pos.symbol),
                time_ms=now_ms,
            )
        )
        pos.size -= closed
        pos.open_fee -= open_part
        if pos.size == 0:
            pos.side, pos.avg_price, pos.open_fee = None, ZERO, ZERO
            if opened > 0:
                pos.side, pos.size, pos.avg_price, pos.open_fee = (
                    order.side,
                    opened,
                    price,
                    open_fee,
                )
                pos.created_ms, pos.cur_realised_pnl = now_ms, -open_fee
                pos.cum_realised_pnl -= open_fee
        return closed

    # --- TP/SL -----------------------------------------------------------------------------------
    def _stop_order(
        self, acc: SimAccount, pos: SimPosition, kind: StopKind, trigger: Decimal, now_ms: int
    ) -> SimOrder:
        assert pos.side is not None
        order = SimOrder(
            order_id=str(uuid.uuid4()),
            order_link_id="",
            symbol=pos.symbol,
            side=_opposite(pos.side),
            order_type="Market",
            qty=ZERO,
            price=ZERO,
            time_in_force="IOC",
            reduce_only=True,
            close_on_trigger=True,
            created_ms=now_ms,
            updated_ms=now_ms,
            status="Untriggered",
            stop_order_type=kind,
            trigger_price=trigger,
            create_type="CreateByStopLoss" if kind == "StopLoss" else "CreateByTakeProfit",
        )
        acc.orders[order.order_id] = order
        return order

    def _set_stops(
        self,
        acc: SimAccount,
        pos: SimPosition,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        source: SimOrder | None,
        now_ms: int,
        tp_trigger_by: TriggerBy | None = None,
        sl_trigger_by: TriggerBy | None = None,
    ) -> bool:
        """Full-mode TP/SL of the position: None leaves a side alone, 0 cancels it.
        Returns whether anything changed."""
        changed = False
        for kind, value, attr in (
            ("TakeProfit", take_profit, "tp_order_id"),
            ("StopLoss", stop_loss, "sl_order_id"),
        ):
            if value is None:
                continue
            current_id = getattr(pos, attr)
            current = acc.orders.get(current_id) if current_id else None
            if current is not None and not current.is_open:
                current = None
            by = (tp_trigger_by if kind == "TakeProfit" else sl_trigger_by) or (
                (source.tp_trigger_by if kind == "TakeProfit" else source.sl_trigger_by)
                if source
                else None
            )
            if value == 0:
                if current is not None:
                    self._cancel(current, now_ms, "CancelByUser", "EC_NoError", "Deactivated")
                    setattr(pos, attr, None)
                    changed = True
                continue
            if (
                current is not None
                and current.trigger_price == value
                and (by is None or current.trigger_by == by)
            ):
                continue
            if current is None:
                current = self._stop_order(acc, pos, kind, value, now_ms)  # type: ignore[arg-type]
                setattr(pos, attr, current.order_id)
            current.trigger_price = value
            current.updated_ms = now_ms
            if by is not None:
                current.trigger_by = by
            changed = True
        pos.updated_ms = now_ms if changed else pos.updated_ms
        return changed

    def _deactivate_stops(self, acc: SimAccount, pos: SimPosition, now_ms: int) -> None:
        for attr in ("tp_order_id", "sl_order_id"):
            oid = getattr(pos, attr)
            order = acc.orders.get(oid) if oid else None
            if order is not None and order.is_open:
                self._cancel(order, now_ms, "CancelByTpSlTsClear", "EC_NoError", "Deactivated")
            setattr(pos, attr, None)

    def _check_stops(self, acc: SimAccount, symbol: str, q: Quote, now_ms: int) -> None:
        pos = acc.positions.get(symbol)
        if pos is None or pos.size == 0:
            return
        long = pos.side == "Buy"
        fired: list[tuple[SimOrder, Decimal]] = []
        for attr in ("sl_order_id", "tp_order_id"):  # the stop first when both are reached
            oid = getattr(pos, attr)
            order = acc.orders.get(oid) if oid else None
            if order is None or not order.is_open or order.trigger_price is None:
                continue
            trig = order.trigger_price
            if order.trigger_by == "LastPrice":
                lo, hi, now = q.low, q.high, q.last
            else:
                lo = hi = now = q.mark
            loss_side = order.stop_order_type == "StopLoss"
            falls = long == loss_side  # a long's SL and a short's TP fire on a fall
            kind = Trigger.STOP_LOSS if loss_side else Trigger.TAKE_PROFIT
            if matching.stop_reached(_ours(pos.side or "Buy"), kind, trig, lo, hi):
                gapped = (now < trig) if falls else (now > trig)
                fired.append((order, now if gapped else trig))
        if not fired:
            return
        order, base = fired[0]
        inst = self.instruments[symbol]
        slip = self.fees.slippage
        price = (
            inst.round_price(base * (ONE - slip), ROUND_FLOOR)
            if order.side == "Sell"
            else inst.round_price(base * (ONE + slip), ROUND_CEILING)
        )
        order.status = "Triggered"
        order.qty = pos.size
        order.price = price
        self._fill(acc, order, price, maker=False, now_ms=now_ms)

    # --- amend / cancel / stops / leverage ---------------------------------------------------
    def amend(
        self,
        acc: SimAccount,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
        *,
        qty: Decimal | None,
        price: Decimal | None,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        now_ms: int,
    ) -> SimOrder:
        inst = self.instrument(symbol)
        order = acc.find(order_id, order_link_id)
        if order is None or order.symbol != symbol or order.status != "New":
            raise ExchangeError(ORDER_NOT_FOUND, "order not exists or too late to replace")
        if qty is not None and (not inst.on_step(qty) or qty < inst.min_qty):
            raise ExchangeError(PARAMS, "Qty invalid")
        if price is not None and not inst.on_tick(price):
            raise ExchangeError(PARAMS, "params error: price invalid")
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        new_tp = order.take_profit if take_profit is None else (take_profit or None)
        new_sl = order.stop_loss if stop_loss is None else (stop_loss or None)
        if (new_qty, new_price, new_tp, new_sl) == (
            order.qty,
            order.price,
            order.take_profit,
            order.stop_loss,
        ):
            raise ExchangeError(PARAMS, "order not modified")
        assert new_price is not None
        self._check_tpsl(order.side, new_price, new_tp, new_sl, "LastPrice")
        order.qty, order.price, order.take_profit, order.stop_loss = (
            new_qty,
            new_price,
            new_tp,
            new_sl,
        )
        order.updated_ms = now_ms
        q = self.quotes.get(symbol)
        if q is not None:
            marketable = new_price >= q.last if order.side == "Buy" else new_price <= q.last
            if marketable and order.time_in_force != "PostOnly":
                self._execute_new(acc, order, q, now_ms)
        return order

    def cancel(
        self,
        acc: SimAccount,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
        now_ms: int,
    ) -> SimOrder:
        self.instrument(symbol)
        order = acc.find(order_id, order_link_id)
        if order is None or order.symbol != symbol or not order.is_open:
            raise ExchangeError(ORDER_NOT_FOUND, "order not exists or too late to cancel")
        status = "Deactivated" if order.stop_order_type else "Cancelled"
        self._cancel(order, now_ms, "CancelByUser", "EC_NoError", status)
        if order.stop_order_type:
            pos = acc.position(symbol)
            for attr in ("tp_order_id", "sl_order_id"):
                if getattr(pos, attr) == order.order_id:
                    setattr(pos, attr, None)
        return order

    @staticmethod
    def _cancel(
        order: SimOrder, now_ms: int, cancel_type: str, reason: str, status: str = "Cancelled"
    ) -> None:
        order.status = status
        order.cancel_type = cancel_type
        order.reject_reason = reason
        order.updated_ms = now_ms

    def trading_stop(
        self,
        acc: SimAccount,
        symbol: str,
        *,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        tp_trigger_by: TriggerBy | None,
        sl_trigger_by: TriggerBy | None,
        now_ms: int,
    ) -> None:
        self.instrument(symbol)
        pos = acc.position(symbol)
        if pos.size == 0 or pos.side is None:
            raise ExchangeError(PARAMS, "can not set tp/sl/ts for zero position")
        q = self.quote(symbol)
        self._check_tpsl(pos.side, q.last, take_profit, stop_loss, "LastPrice")
        changed = self._set_stops(
            acc, pos, take_profit, stop_loss, None, now_ms, tp_trigger_by, sl_trigger_by
        )
        if not changed:
            raise ExchangeError(NOT_MODIFIED, "not modified")

    def set_leverage(self, acc: SimAccount, symbol: str, buy: Decimal, sell: Decimal) -> None:
        inst = self.instrument(symbol)
        if buy != sell:
            raise ExchangeError(PARAMS, "buy leverage must be equal to sell leverage")
        if not ONE <= buy <= inst.max_leverage:
            raise ExchangeError(
                PARAMS, f"leverage invalid: must be between 1 and {inst.max_leverage}"
            )
        if self.leverage_of(acc, symbol) == buy:
            raise ExchangeError(LEVERAGE_NOT_MODIFIED, "leverage not modified")
        acc.leverage[symbol] = buy

    # --- account figures ---------------------------------------------------------------------------
    def mark(self, symbol: str, fallback: Decimal) -> Decimal:
        q = self.quotes.get(symbol)
        return q.mark if q is not None else fallback

    def unrealised(self, acc: SimAccount, pos: SimPosition) -> Decimal:
        if pos.size == 0 or pos.side is None:
            return ZERO
        mark = self.mark(pos.symbol, pos.avg_price)
        return matching.unrealised_pnl(_ours(pos.side), pos.size, pos.avg_price, mark)

    def position_im(self, acc: SimAccount, pos: SimPosition) -> Decimal:
        return pos.size * self.mark(pos.symbol, pos.avg_price) / self.leverage_of(acc, pos.symbol)

    def order_im(self, acc: SimAccount) -> Decimal:
        total = ZERO
        for o in acc.open_orders():
            if o.reduce_only or o.stop_order_type or o.price is None:
                continue
            total += o.leaves_qty * o.price / self.leverage_of(acc, o.symbol)
        return total

    def equity(self, acc: SimAccount) -> Decimal:
        return acc.wallet + sum(
            (self.unrealised(acc, p) for p in acc.positions.values()), start=ZERO
        )

    def available(self, acc: SimAccount) -> Decimal:
        im = sum((self.position_im(acc, p) for p in acc.positions.values()), start=ZERO)
        return self.equity(acc) - im - self.order_im(acc)

    def liq_price(self, acc: SimAccount, pos: SimPosition) -> Decimal | None:
        """Isolated-style estimate: entry·(1 ∓ 1/leverage ± MMR)."""
        if pos.size == 0 or pos.side is None:
            return None
        lev = self.leverage_of(acc, pos.symbol)
        return matching.liquidation_price(_ours(pos.side), pos.avg_price, lev, MMR)
