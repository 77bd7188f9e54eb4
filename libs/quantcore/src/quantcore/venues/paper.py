"""The paper venue: Bybit-like books kept in PostgreSQL, in our vocabulary, filled against live (or simulated) prices.

- Market orders fill at once at the price ± slippage, taker fee.
- Limit orders that cross the price fill at once at the price (taker, as on an exchange);
  others rest and fill at their limit when the price trades through (maker fee) — `match()`.
- SL/TP attached to an order move onto the position (Bybit tpslMode Full); the position is
  closed by its stop, its take-profit or its liquidation price with the one rule the
  backtester closes with (`matching.first_exit`): a position filled at a known bar's open (an
  order with `fill_from`: a decision at a bar's close) on the 1-min bars completed since the
  venue last looked (open, high, low: a gap fills at the open, a bar that reached the stop and
  the target fills the stop; booked once the bar is complete, at the level's price — a
  decision at the previous bar's close fills at the open of the bar in progress, before
  anything inside it, as in the backtest); any other (an entry filled at whatever price it
  met, or a level moved inside a bar: that bar may have reached the new level before it was
  there) on the sampled last price.
- Funding is charged at every 8-hour boundary (00/08/16 UTC) at the coin's current rate.

The rules live here; the books (and every line of SQL) in `quantcore.store.paper_venue`, which
the service wires in (`PaperBook` below is what this class needs of them). Every mutation runs
in one transaction holding the venue's lock (`PaperBook.locked`), so replicas and the position
monitor never interleave half-applied fills. `order_link_id` is the key: placing an order that
already exists returns it with `duplicate=True` (Bybit's 110072, looked up) — the lookup and
the insert happen under the lock, so concurrent placements of one link id place it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from quantcore.errors import ExternalError, Rejected, TemporaryError
from quantcore.logging import get_logger
from quantcore.math import matching
from quantcore.model.market import Candle
from quantcore.model.trading import (
    AccountEquity,
    ClosedPnl,
    ExecKind,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Trigger,
    VenueName,
)
from quantcore.venues.prices import PriceSource, Quote

log = get_logger(component="venue.paper")
OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)  # paper orders never wait for a trigger
ZERO = Decimal(0)


@dataclass(frozen=True)
class PaperFees:
    taker_pct: float = 0.055
    maker_pct: float = 0.02
    slippage_pct: float = 0.05
    default_leverage: float = 10.0


@dataclass(frozen=True)
class BookPosition:
    """A position as the paper books keep it (what `Position` shows plus the running totals)."""

    symbol: str
    side: Side
    size: Decimal
    avg_price: Decimal
    leverage: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    fees: Decimal  # trading + funding fees since open
    realised_pnl: Decimal  # partial closes, before fees
    closed_qty: Decimal
    closed_value: Decimal  # sum of exit qty x price, for the average exit
    last_funding_at: datetime
    opened_at: datetime
    updated_at: datetime
    watch_bar: datetime | None = None  # the bar the entry filled at the open of (no gap there)
    watch_from: datetime | None = None  # the first bar not yet fully seen; None: samples only


@dataclass(frozen=True)
class OrderContext:
    """What deciding one order needs: the coin's position, its leverage, the free margin."""

    position: BookPosition | None
    leverage: Decimal
    available: Decimal  # balance minus the margin of positions and resting opening orders


class PaperBookTx(Protocol):
    """The books inside one transaction holding the venue's lock."""

    async def snapshot(
        self, order_link_ids: Sequence[str], symbol: str, default_leverage: Decimal
    ) -> tuple[dict[str, Order], OrderContext]: ...

    async def context(self, symbol: str, default_leverage: Decimal) -> OrderContext: ...

    async def position(self, symbol: str) -> BookPosition | None: ...

    async def positions(self) -> list[BookPosition]: ...

    async def leverage(self, symbol: str, default: Decimal) -> Decimal: ...

    async def order(self, order_link_id: str) -> Order | None: ...

    async def open_orders(self) -> list[Order]: ...

    async def insert_order(
        self, req: OrderRequest, status: OrderStatus, reason: str | None, now: datetime
    ) -> Order: ...

    async def mark_filled(
        self, order: Order, price: Decimal, fee: Decimal, now: datetime
    ) -> Order: ...

    async def set_status(self, order_link_id: str, status: OrderStatus, now: datetime) -> None: ...

    async def amend(
        self, order_link_id: str, qty: Decimal | None, price: Decimal | None, now: datetime
    ) -> Order: ...

    async def cancel(self, symbol: str, order_link_id: str, now: datetime) -> Order | None: ...

    async def add_balance(self, amount: Decimal, now: datetime) -> None: ...

    async def insert_execution(
        self, venue_order_id: str, order_link_id: str | None, symbol: str, side: Side,
        price: Decimal, qty: Decimal, fee: Decimal, kind: ExecKind, trigger: Trigger | None,
        at: datetime,
    ) -> None: ...  # fmt: skip

    async def upsert_position(
        self, symbol: str, side: Side, size: Decimal, avg_price: Decimal, leverage: Decimal,
        fee: Decimal, now: datetime, stop_loss: Decimal | None, take_profit: Decimal | None,
        watch_bar: datetime | None = None,
    ) -> None: ...  # fmt: skip

    async def watched(self, symbol: str, watch_from: datetime | None) -> None: ...

    async def reduce_position(
        self, symbol: str, remaining: Decimal, fee: Decimal, realised: Decimal, closing: Decimal,
        price: Decimal, now: datetime,
    ) -> None: ...  # fmt: skip

    async def close_position(self, closed: ClosedPnl) -> None: ...

    async def charge_funding(
        self, symbol: str, fee: Decimal, at: datetime, now: datetime
    ) -> None: ...

    async def set_trading_stop(
        self, symbol: str, stop_loss: Decimal | None, take_profit: Decimal | None, now: datetime
    ) -> bool: ...

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None: ...


class PaperBook(Protocol):
    """The paper account's books (`quantcore.store.paper_venue.PaperBooks`)."""

    def locked(self, durable: bool = True) -> AbstractAsyncContextManager[PaperBookTx]: ...

    async def order(self, order_link_id: str) -> Order | None: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def positions(self, symbol: str | None = None) -> list[BookPosition]: ...

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Fill]: ...

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]: ...

    async def balance_and_positions(self) -> tuple[Decimal, list[BookPosition]]: ...


def _d(value: float | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _now() -> datetime:
    return datetime.now(UTC)


class PaperVenue:
    name: VenueName = "paper"

    def __init__(self, book: PaperBook, prices: PriceSource, fees: PaperFees | None = None) -> None:
        self.book = book
        self.prices = prices
        self.fees = fees or PaperFees()
        self._taker = Decimal(str(self.fees.taker_pct)) / 100
        self._maker = Decimal(str(self.fees.maker_pct)) / 100
        self._slip = Decimal(str(self.fees.slippage_pct)) / 100
        self._lev = Decimal(str(self.fees.default_leverage))

    # --- orders -------------------------------------------------------------------------------------

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order]:
        if not orders:
            return []
        quotes = await self.prices.quotes()
        opens = await self._bar_opens(orders)
        out: list[Order] = []
        # not waiting for the WAL flush: the caller's next ordinary commit flushes it; a database
        # crash before that loses the order with the caller's own rows, and it is placed again
        async with self.book.locked(durable=False) as tx:
            # one round trip: the lock, the link ids already placed, the first order's context
            found, first = await tx.snapshot(
                [r.order_link_id for r in orders], orders[0].symbol, self._lev
            )
            ctx: OrderContext | None = first  # valid until the first write
            for req in orders:
                existing = found.get(req.order_link_id)
                if existing is not None:
                    out.append(replace(existing, duplicate=True))
                    continue
                use = ctx if req.symbol == orders[0].symbol else None
                order = await self._place(
                    tx, req, quotes.get(req.symbol), use, opens.get(req.order_link_id)
                )
                ctx = None
                found[req.order_link_id] = order
                out.append(order)
        return out

    async def _bar_opens(self, orders: Sequence[OrderRequest]) -> dict[str, Decimal]:
        """The reference price of the market orders that ask to fill at a bar's open
        (`fill_from`): that bar's open while it is in progress; else they fill at the last
        price (logged)."""
        out: dict[str, Decimal] = {}
        for req in orders:
            if req.order_type is not OrderType.MARKET or req.fill_from is None:
                continue
            try:
                found = await self.prices.bar_open(req.symbol, req.fill_from)
            except ExternalError as exc:  # the market data hiccuped: the last price, as before
                log.warning("bar open unreadable", symbol=req.symbol, error=str(exc)[:200])
                found = None
            if found is None:
                log.info("bar open not available: filled at the last price",
                         order_link_id=req.order_link_id, fill_from=req.fill_from.isoformat())  # fmt: skip
                continue
            out[req.order_link_id] = Decimal(str(found))
        return out

    async def _place(
        self, tx: PaperBookTx, req: OrderRequest, q: Quote | None, ctx: OrderContext | None,
        bar_open: Decimal | None = None,
    ) -> Order:  # fmt: skip
        now = _now()
        reason = None
        if q is None:
            reason = f"no current price for {req.symbol}"
        elif not req.reduce_only:
            ctx = ctx or await tx.context(req.symbol, self._lev)
            reason = self._margin_refusal(req, q, ctx)
        elif (ctx.position if ctx is not None else await tx.position(req.symbol)) is None:
            reason = "reduce-only order with no position"
        status = OrderStatus.REJECTED if reason else OrderStatus.NEW
        order = await tx.insert_order(req, status, reason, now)
        if reason or q is None:
            log.info("paper order rejected", order_link_id=req.order_link_id, reason=reason)
            return order
        last = Decimal(str(q.last)) if bar_open is None else bar_open
        crosses = req.order_type is OrderType.MARKET or (
            req.price is not None and matching.marketable(req.side, req.price, last)
        )
        if crosses:
            slip = self._slip if req.order_type is OrderType.MARKET else ZERO
            price = matching.taker_price(req.side, last, slip)
            watch_bar = req.fill_from if bar_open is not None else None
            order = await self._fill(tx, order, price, self._taker, now, watch_bar)
        return order

    def _margin_refusal(self, req: OrderRequest, q: Quote, ctx: OrderContext) -> str | None:
        price = req.price if req.price is not None else Decimal(str(q.last))
        pos = ctx.position
        opening = matching.opening_qty(
            pos.side if pos is not None else None, pos.size if pos is not None else ZERO,
            req.side, req.qty,
        )  # fmt: skip
        if opening == 0:
            return None
        needed = matching.order_cost(opening, price, ctx.leverage, self._taker)
        if needed > ctx.available:
            return (
                f"110007 insufficient balance: needs {needed:.2f} margin, "
                f"{ctx.available:.2f} available"
            )
        return None

    async def get_order(self, symbol: str, order_link_id: str) -> Order | None:
        order = await self.book.order(order_link_id)
        return None if order is None or order.symbol != symbol else order

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return await self.book.open_orders(symbol)

    async def amend_order(
        self,
        symbol: str,
        order_link_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        async with self.book.locked() as tx:
            order = await tx.order(order_link_id)
            if order is None or order.symbol != symbol:
                raise Rejected(f"order {order_link_id} not found", 110001)
            if order.status not in OPEN:
                raise Rejected(f"order {order_link_id} is {order.status}, cannot amend", 110001)
            return await tx.amend(order_link_id, qty, price, _now())

    async def cancel_order(self, symbol: str, order_link_id: str) -> Order | None:
        async with self.book.locked() as tx:
            return await tx.cancel(symbol, order_link_id, _now())

    # --- positions ----------------------------------------------------------------------------------

    async def set_trading_stop(
        self, symbol: str, *, stop_loss: Decimal | None = None, take_profit: Decimal | None = None
    ) -> None:
        async with self.book.locked() as tx:
            if not await tx.set_trading_stop(symbol, stop_loss, take_profit, _now()):
                raise Rejected(f"can not set tp/sl/ts for zero position ({symbol})", 10001)

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        async with self.book.locked() as tx:
            await tx.set_leverage(symbol, leverage)

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """The books' positions. Asked for one coin (a trader about to act on it), what the
        price path fired since the last look is booked first, as an exchange would have."""
        if symbol is not None:
            await self.settle(symbol)
        quotes = await self.prices.quotes()
        return [_position(p, quotes.get(p.symbol)) for p in await self.book.positions(symbol)]

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Fill]:
        return await self.book.executions(since, symbol)

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]:
        return await self.book.closed_pnl(since, symbol)

    async def equity(self) -> AccountEquity:
        quotes = await self.prices.quotes()
        balance, rows = await self.book.balance_and_positions()
        open_positions = [_position(p, quotes.get(p.symbol)) for p in rows]
        unpriced = [p.symbol for p in open_positions if p.unrealised_pnl is None]
        if unpriced:
            raise TemporaryError(f"no current price for {', '.join(unpriced)}: equity unknown")
        unrealised = sum((p.unrealised_pnl or ZERO for p in open_positions), ZERO)
        return AccountEquity(
            equity=balance + unrealised, balance=balance, unrealised_pnl=unrealised
        )

    async def close(self) -> None:
        return None

    # --- matching -----------------------------------------------------------------------------------

    async def match(self) -> int:
        """Fill resting limit orders the price traded through, trigger SL/TP and liquidations,
        charge funding. Returns the number of executions made."""
        paths = await self._paths()
        quotes = await self.prices.quotes()
        made = 0
        now = _now()
        async with self.book.locked() as tx:
            for order in await tx.open_orders():
                q = quotes.get(order.symbol)
                if q is None or order.order_type != OrderType.LIMIT or order.price is None:
                    continue
                last, price = Decimal(str(q.last)), order.price
                if (order.side == Side.BUY and last <= price) or (
                    order.side == Side.SELL and last >= price
                ):
                    if order.reduce_only and await tx.position(order.symbol) is None:
                        await tx.set_status(order.order_link_id, OrderStatus.CANCELLED, now)
                        continue
                    await self._fill(tx, order, price, self._maker, now)
                    made += 1
            for pos in await tx.positions():
                q = quotes.get(pos.symbol)
                if q is None:
                    continue
                made += await self._trigger(tx, pos, q, paths.get(pos.symbol), now)
                made += await self._fund(tx, pos.symbol, q, now)
        return made

    async def settle(self, symbol: str) -> int:
        """Close `symbol`'s position if its stop, target or liquidation fired since the last
        look (no funding, no resting orders: `match()` does those)."""
        paths = await self._paths(symbol)
        quotes = await self.prices.quotes()
        q = quotes.get(symbol)
        if q is None:
            return 0
        async with self.book.locked() as tx:
            pos = await tx.position(symbol)
            if pos is None:
                return 0
            return await self._trigger(tx, pos, q, paths.get(symbol), _now())

    async def _paths(self, symbol: str | None = None) -> dict[str, tuple[datetime, list[Candle]]]:
        """The bars since each watched position's `watch_from` (read before the lock: market
        data is a network call), keyed by coin with the watch_from they were read for."""
        out: dict[str, tuple[datetime, list[Candle]]] = {}
        for pos in await self.book.positions(symbol):
            if pos.watch_from is None:
                continue
            try:
                bars = await self.prices.bars_since(pos.symbol, pos.watch_from)
            except ExternalError as exc:  # the sampled price still watches it
                log.warning("bars unreadable", symbol=pos.symbol, error=str(exc)[:200])
                continue
            out[pos.symbol] = (pos.watch_from, bars)
        return out

    async def _trigger(
        self, tx: PaperBookTx, pos: BookPosition, q: Quote,
        path: tuple[datetime, list[Candle]] | None, now: datetime,
    ) -> int:  # fmt: skip
        """Close the position by the first exit `matching.first_exit` finds. A position watched
        on bars: on the bars completed since the last look, in time order (the bar in progress
        is looked at once it is complete: a decision at the previous bar's close fills at its
        open, before anything inside it; a stop reached inside a bar is booked at that bar's
        close, at the stop's price). Otherwise (or when its bars could not be read, so that no
        position goes unwatched): on the sampled last price."""
        side = matching.sign(pos.side)
        liq = _liq_price(pos)

        def rule(
            o: Decimal, h: Decimal, lo: Decimal, gap: bool
        ) -> matching.ExitFill[Decimal] | None:
            return matching.first_exit(
                side, o, h, lo, stop=pos.stop_loss, target=pos.take_profit, liquidation=liq,
                slippage=self._slip, gap=gap,
            )  # fmt: skip

        fired: matching.ExitFill[Decimal] | None = None
        if path is not None and path[0] != pos.watch_from:
            return 0  # read for an older look (another pass moved on meanwhile): the next one
        if path is not None:
            bars = sorted((b for b in path[1] if b.start >= path[0]), key=lambda b: b.start)
            for bar in bars[:-1]:  # the newest is the bar in progress
                o, h, lo = Decimal(str(bar.open)), Decimal(str(bar.high)), Decimal(str(bar.low))
                fired = rule(o, h, lo, bar.start != pos.watch_bar)
                if fired is not None:
                    break
            if fired is None:
                if len(bars) > 1:  # the complete ones are seen
                    await tx.watched(pos.symbol, bars[-1].start)
                return 0
        else:
            last = Decimal(str(q.last))
            fired = rule(last, last, last, True)
        if fired is None:
            return 0
        trigger = {"stop_loss": Trigger.STOP_LOSS, "take_profit": Trigger.TAKE_PROFIT}.get(
            fired.kind
        )
        kind = ExecKind.LIQUIDATION if fired.kind == "liquidation" else ExecKind.TRADE
        await self._apply(
            tx, pos.symbol, pos.side.opposite, pos.size, fired.price, self._taker, now,
            venue_order_id=str(uuid.uuid4()), order_link_id=None, kind=kind, trigger=trigger,
        )  # fmt: skip
        log.info(
            "paper position closed by the venue", symbol=pos.symbol, kind=str(kind),
            trigger=str(trigger), price=str(fired.price), gapped=fired.gapped,
        )  # fmt: skip
        return 1

    async def _fund(self, tx: PaperBookTx, symbol: str, q: Quote, now: datetime) -> int:
        pos = await tx.position(symbol)  # read again: a trigger may just have closed it
        if pos is None or q.funding_rate_pct is None:
            return 0
        boundaries = matching.funding_times(pos.last_funding_at, now)
        if not boundaries:
            return 0
        rate = Decimal(str(q.funding_rate_pct)) / 100
        mark = Decimal(str(q.mark))
        fee = matching.funding_fee(pos.side, pos.size, mark, rate, len(boundaries))
        await tx.charge_funding(symbol, fee, boundaries[-1], now)
        await tx.add_balance(-fee, now)
        await tx.insert_execution(
            str(uuid.uuid4()), None, symbol, pos.side, mark, pos.size, fee, ExecKind.FUNDING, None,
            boundaries[-1],
        )  # fmt: skip
        return 1

    # --- fills and the position book ---------------------------------------------------------------

    async def _fill(
        self, tx: PaperBookTx, order: Order, price: Decimal, fee_rate: Decimal, now: datetime,
        watch_bar: datetime | None = None,
    ) -> Order:  # fmt: skip
        qty = order.qty - order.filled_qty
        if order.reduce_only:
            pos = await tx.position(order.symbol)
            qty = min(qty, pos.size) if pos is not None else ZERO
        fee = await self._apply(
            tx, order.symbol, order.side, qty, price, fee_rate, now,
            venue_order_id=order.venue_order_id, order_link_id=order.order_link_id,
            kind=ExecKind.TRADE, trigger=None,
            stop_loss=order.stop_loss, take_profit=order.take_profit, watch_bar=watch_bar,
        )  # fmt: skip
        return await tx.mark_filled(order, price, fee, now)

    async def _apply(
        self,
        tx: PaperBookTx,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        fee_rate: Decimal,
        now: datetime,
        *,
        venue_order_id: str,
        order_link_id: str | None,
        kind: ExecKind,
        trigger: Trigger | None,
        stop_loss: Decimal | None = None,
        take_profit: Decimal | None = None,
        watch_bar: datetime | None = None,
    ) -> Decimal:
        """Book one execution on the position; returns its fee."""
        fee = matching.fee(qty, price, fee_rate)
        await tx.insert_execution(
            venue_order_id, order_link_id, symbol, side, price, qty, fee, kind, trigger, now
        )
        await tx.add_balance(-fee, now)
        pos = await tx.position(symbol)
        change = matching.apply_fill(
            pos.side if pos is not None else None,
            pos.size if pos is not None else ZERO,
            pos.avg_price if pos is not None else ZERO,
            side, qty, price,
        )  # fmt: skip
        if pos is None or change.closed_qty == 0:
            # a new position takes the coin's leverage; an existing one keeps its own
            lev = pos.leverage if pos is not None else await tx.leverage(symbol, self._lev)
            await tx.upsert_position(
                symbol, side, change.size, change.avg_price, lev, fee, now, stop_loss, take_profit,
                watch_bar if pos is None else None,
            )  # fmt: skip
            return fee
        closing, realised = change.closed_qty, change.realised
        close_fee, open_fee = matching.split_fee(fee, closing, qty)
        await tx.add_balance(realised, now)
        remaining = change.size if not change.flipped else ZERO
        if remaining > 0:
            await tx.reduce_position(symbol, remaining, fee, realised, closing, price, now)
        else:
            closed_qty = pos.closed_qty + closing
            await tx.close_position(ClosedPnl(
                venue_order_id=venue_order_id, symbol=symbol, side=side, qty=closed_qty,
                avg_entry_price=pos.avg_price,
                avg_exit_price=(pos.closed_value + closing * price) / closed_qty,
                closed_pnl=pos.realised_pnl + realised - pos.fees - close_fee,
                leverage=pos.leverage, created_at=pos.opened_at, updated_at=now,
            ))  # fmt: skip
        if change.flipped:  # a larger opposite order flips the position
            lev = await tx.leverage(symbol, self._lev)
            await tx.upsert_position(
                symbol, side, change.size, change.avg_price, lev, open_fee, now, stop_loss,
                take_profit, watch_bar,
            )  # fmt: skip
        return fee


# --- book records → venue records ------------------------------------------------------------------


def _liq_price(pos: BookPosition) -> Decimal:
    return matching.liquidation_price(pos.side, pos.avg_price, pos.leverage)


def _position(p: BookPosition, q: Quote | None) -> Position:
    mark = _d(q.mark) if q is not None else None
    unrealised = (
        matching.unrealised_pnl(p.side, p.size, p.avg_price, mark) if mark is not None else None
    )
    return Position(
        symbol=p.symbol, side=p.side, size=p.size, avg_price=p.avg_price, mark_price=mark,
        leverage=p.leverage, unrealised_pnl=unrealised, stop_loss=p.stop_loss,
        take_profit=p.take_profit, liq_price=_liq_price(p), updated_at=p.updated_at,
        opened_at=p.opened_at, fees=p.fees,
    )  # fmt: skip
