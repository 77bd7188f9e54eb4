"""The paper venue: Bybit-like books kept in PostgreSQL, in our vocabulary, filled against live (or simulated) prices.

- Market orders fill at once at the price ± slippage, taker fee.
- Limit orders that cross the price fill at once at the price (taker, as on an exchange);
  others rest and fill at their limit when the price trades through (maker fee) — `match()`.
- SL/TP attached to an order move onto the position (Bybit tpslMode Full) and close it at
  market when the price touches them; a position past its liquidation price is liquidated.
- Funding is charged at every 8-hour boundary (00/08/16 UTC) at the coin's current rate.

Every mutation runs in one transaction holding the venue's advisory lock, so replicas and the
position monitor never interleave half-applied fills. `order_link_id` is the key: placing an
order that already exists returns it with `duplicate=True` (Bybit's 110072, looked up).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from quantcore.errors import ExternalError, Rejected, TemporaryError
from quantcore.logging import get_logger
from quantcore.math import matching
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
ACCOUNT = "paper"
PAPER_LOCK = 0x9A9E_7B00  # pg advisory lock of the paper venue's books
Row = dict[str, Any]
OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)  # paper orders never wait for a trigger


@dataclass(frozen=True)
class PaperFees:
    taker_pct: float = 0.055
    maker_pct: float = 0.02
    slippage_pct: float = 0.05
    default_leverage: float = 10.0


def _d(value: float | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _now() -> datetime:
    return datetime.now(UTC)


class PaperVenue:
    name: VenueName = "paper"

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        prices: PriceSource,
        start_equity: float,
        fees: PaperFees | None = None,
    ) -> None:
        self.pool = pool
        self.prices = prices
        self.start_equity = Decimal(str(start_equity))
        self.fees = fees or PaperFees()
        self._taker = Decimal(str(self.fees.taker_pct)) / 100
        self._maker = Decimal(str(self.fees.maker_pct)) / 100
        self._slip = Decimal(str(self.fees.slippage_pct)) / 100
        self._account_ready = False  # the account row exists (checked once per process)

    # --- orders -------------------------------------------------------------------------------------

    async def place_orders(self, orders: Sequence[OrderRequest]) -> list[Order]:
        quotes = await self.prices.quotes()
        opens = await self._bar_opens(orders)
        out: list[Order] = []
        # not waiting for the WAL flush: the caller's next ordinary commit flushes it; a database
        # crash before that loses the order with the caller's own rows, and it is placed again
        async with self._locked(durable=False) as conn:
            for req in orders:
                existing = await self._order_row(conn, req.order_link_id)
                if existing is not None:
                    out.append(_order(existing, duplicate=True))
                    continue
                out.append(
                    _order(
                        await self._place(
                            conn, req, quotes.get(req.symbol), opens.get(req.order_link_id)
                        )
                    )
                )
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
        self, conn: AsyncConnection[Any], req: OrderRequest, q: Quote | None,
        bar_open: Decimal | None = None,
    ) -> Row:  # fmt: skip
        now = _now()
        reason = None
        if q is None:
            reason = f"no current price for {req.symbol}"
        elif not req.reduce_only:
            reason = await self._margin_refusal(conn, req, q)
        elif await self._position(conn, req.symbol) is None:
            reason = "reduce-only order with no position"
        status = OrderStatus.REJECTED if reason else OrderStatus.NEW
        row = await _insert_order(conn, req, status, reason, now)
        if reason or q is None:
            log.info("paper order rejected", order_link_id=req.order_link_id, reason=reason)
            return row
        last = Decimal(str(q.last)) if bar_open is None else bar_open
        crosses = req.order_type is OrderType.MARKET or (
            req.price is not None and matching.marketable(req.side, req.price, last)
        )
        if crosses:
            slip = self._slip if req.order_type is OrderType.MARKET else Decimal(0)
            price = matching.taker_price(req.side, last, slip)
            row = await self._fill(conn, row, price, self._taker, now)
        return row

    async def _margin_refusal(
        self, conn: AsyncConnection[Any], req: OrderRequest, q: Quote
    ) -> str | None:
        price = req.price if req.price is not None else Decimal(str(q.last))
        pos = await self._position(conn, req.symbol)
        opening = matching.opening_qty(
            Side(pos["side"]) if pos is not None else None,
            pos["size"] if pos is not None else Decimal(0),
            req.side, req.qty,
        )  # fmt: skip
        if opening == 0:
            return None
        lev = await self._leverage(conn, req.symbol)
        needed = matching.order_cost(opening, price, lev, self._taker)
        available = await self._available(conn)
        if needed > available:
            return (
                f"110007 insufficient balance: needs {needed:.2f} margin, {available:.2f} available"
            )
        return None

    async def get_order(self, symbol: str, order_link_id: str) -> Order | None:
        async with self.pool.connection() as conn:
            row = await self._order_row(conn, order_link_id)
        return None if row is None or row["symbol"] != symbol else _order(row)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_orders WHERE status IN ('new', 'partially_filled') "
                "AND (%s::text IS NULL OR symbol = %s) ORDER BY created_at",
                (symbol, symbol),
            )
            return [_order(r) for r in await cur.fetchall()]

    async def amend_order(
        self,
        symbol: str,
        order_link_id: str,
        *,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> Order:
        async with self._locked() as conn:
            row = await self._order_row(conn, order_link_id)
            if row is None or row["symbol"] != symbol:
                raise Rejected(f"order {order_link_id} not found", 110001)
            if row["status"] not in OPEN:
                raise Rejected(f"order {order_link_id} is {row['status']}, cannot amend", 110001)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "UPDATE paper_orders SET qty = COALESCE(%s, qty), price = COALESCE(%s, price), "
                "updated_at = %s WHERE order_link_id = %s RETURNING *",
                (qty, price, _now(), order_link_id),
            )
            updated = await cur.fetchone()
            assert updated is not None
            return _order(updated)

    async def cancel_order(self, symbol: str, order_link_id: str) -> Order | None:
        async with self._locked() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "UPDATE paper_orders SET status = 'cancelled', updated_at = %s "
                "WHERE order_link_id = %s AND symbol = %s AND status IN ('new', 'partially_filled') "
                "RETURNING *",
                (_now(), order_link_id, symbol),
            )
            row = await cur.fetchone()
            if row is None:
                row = await self._order_row(conn, order_link_id)
            return None if row is None else _order(row)

    # --- positions ----------------------------------------------------------------------------------

    async def set_trading_stop(
        self, symbol: str, *, stop_loss: Decimal | None = None, take_profit: Decimal | None = None
    ) -> None:
        async with self._locked() as conn:
            result = await conn.execute(
                "UPDATE paper_positions SET stop_loss = COALESCE(%s, stop_loss), "
                "take_profit = COALESCE(%s, take_profit), updated_at = %s WHERE symbol = %s",
                (stop_loss, take_profit, _now(), symbol),
            )
            if result.rowcount == 0:
                raise Rejected(f"can not set tp/sl/ts for zero position ({symbol})", 10001)

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        async with self._locked() as conn:
            await conn.execute(
                "INSERT INTO paper_leverage (symbol, leverage) VALUES (%s, %s) "
                "ON CONFLICT (symbol) DO UPDATE SET leverage = EXCLUDED.leverage",
                (symbol, leverage),
            )

    async def positions(self, symbol: str | None = None) -> list[Position]:
        quotes = await self.prices.quotes()
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_positions WHERE %s::text IS NULL OR symbol = %s ORDER BY symbol",
                (symbol, symbol),
            )
            return [_position(r, quotes.get(r["symbol"])) for r in await cur.fetchall()]

    async def executions(self, since: datetime, symbol: str | None = None) -> list[Fill]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_executions WHERE time >= %s "
                "AND (%s::text IS NULL OR symbol = %s) ORDER BY time",
                (since, symbol, symbol),
            )
            return [_fill(r) for r in await cur.fetchall()]

    async def closed_pnl(self, since: datetime, symbol: str | None = None) -> list[ClosedPnl]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_closed_pnl WHERE updated_at >= %s "
                "AND (%s::text IS NULL OR symbol = %s) ORDER BY updated_at",
                (since, symbol, symbol),
            )
            return [_closed(r) for r in await cur.fetchall()]

    async def equity(self) -> AccountEquity:
        quotes = await self.prices.quotes()
        async with self.pool.connection() as conn:
            balance = await self._balance(conn)
            open_positions = await self._all_positions(conn, quotes)
        unpriced = [p.symbol for p in open_positions if p.unrealised_pnl is None]
        if unpriced:
            raise TemporaryError(f"no current price for {', '.join(unpriced)}: equity unknown")
        unrealised = sum((p.unrealised_pnl or Decimal(0) for p in open_positions), Decimal(0))
        return AccountEquity(
            equity=balance + unrealised, balance=balance, unrealised_pnl=unrealised
        )

    async def close(self) -> None:
        return None

    # --- matching -----------------------------------------------------------------------------------

    async def match(self) -> int:
        """Fill resting limit orders the price traded through, trigger SL/TP and liquidations,
        charge funding. Returns the number of executions made."""
        quotes = await self.prices.quotes()
        made = 0
        now = _now()
        async with self._locked() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_orders WHERE status IN ('new', 'partially_filled') "
                "ORDER BY created_at"
            )
            for row in await cur.fetchall():
                q = quotes.get(row["symbol"])
                if q is None or row["order_type"] != OrderType.LIMIT:
                    continue
                last, price = Decimal(str(q.last)), row["price"]
                if (row["side"] == Side.BUY and last <= price) or (
                    row["side"] == Side.SELL and last >= price
                ):
                    if row["reduce_only"] and await self._position(conn, row["symbol"]) is None:
                        await _set_status(conn, row["order_link_id"], OrderStatus.CANCELLED, now)
                        continue
                    await self._fill(conn, row, price, self._maker, now)
                    made += 1
            for pos in await self._position_rows(conn):
                q = quotes.get(pos["symbol"])
                if q is None:
                    continue
                made += await self._trigger(conn, pos, Decimal(str(q.last)), now)
                made += await self._fund(conn, pos["symbol"], q, now)
        return made

    async def _trigger(
        self, conn: AsyncConnection[Any], pos: Row, last: Decimal, now: datetime
    ) -> int:
        held = Side(pos["side"])
        sl, tp = pos["stop_loss"], pos["take_profit"]
        liq = _liq_price(pos)
        trigger: Trigger | None = None
        if sl is not None and matching.stop_reached(held, Trigger.STOP_LOSS, sl, last, last):
            trigger = Trigger.STOP_LOSS
        elif tp is not None and matching.stop_reached(held, Trigger.TAKE_PROFIT, tp, last, last):
            trigger = Trigger.TAKE_PROFIT
        elif not matching.liquidated(held, liq, last):
            return 0
        side = held.opposite
        if trigger is None:
            price, kind = liq, ExecKind.LIQUIDATION
        else:
            price = matching.taker_price(side, last, self._slip)
            kind = ExecKind.TRADE
        await self._apply(
            conn, pos["symbol"], side, pos["size"], price, self._taker, now,
            venue_order_id=str(uuid.uuid4()), order_link_id=None, kind=kind, trigger=trigger,
        )  # fmt: skip
        log.info(
            "paper position closed by the venue", symbol=pos["symbol"], kind=str(kind),
            trigger=str(trigger), price=str(price),
        )  # fmt: skip
        return 1

    async def _fund(self, conn: AsyncConnection[Any], symbol: str, q: Quote, now: datetime) -> int:
        pos = await self._position(conn, symbol)
        if pos is None or q.funding_rate_pct is None:
            return 0
        boundaries = matching.funding_times(pos["last_funding_at"], now)
        if not boundaries:
            return 0
        rate = Decimal(str(q.funding_rate_pct)) / 100
        fee = matching.funding_fee(
            Side(pos["side"]), pos["size"], Decimal(str(q.mark)), rate, len(boundaries)
        )
        await conn.execute(
            "UPDATE paper_positions SET fees = fees + %s, last_funding_at = %s, updated_at = %s "
            "WHERE symbol = %s",
            (fee, boundaries[-1], now, symbol),
        )
        await self._add_balance(conn, -fee, now)
        await _insert_execution(
            conn, str(uuid.uuid4()), None, symbol, pos["side"], Decimal(str(q.mark)), pos["size"],
            fee, ExecKind.FUNDING, None, boundaries[-1],
        )  # fmt: skip
        return 1

    # --- fills and the position book ---------------------------------------------------------------

    async def _fill(
        self,
        conn: AsyncConnection[Any],
        order: Row,
        price: Decimal,
        fee_rate: Decimal,
        now: datetime,
    ) -> Row:
        qty = order["qty"] - order["filled_qty"]
        if order["reduce_only"]:
            pos = await self._position(conn, order["symbol"])
            qty = min(qty, pos["size"]) if pos is not None else Decimal(0)
        fee = await self._apply(
            conn, order["symbol"], order["side"], qty, price, fee_rate, now,
            venue_order_id=order["venue_order_id"], order_link_id=order["order_link_id"],
            kind=ExecKind.TRADE, trigger=None,
            stop_loss=order["stop_loss"], take_profit=order["take_profit"],
        )  # fmt: skip
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            """
            UPDATE paper_orders SET status = 'filled', filled_qty = qty, avg_fill_price = %s,
                   fee = fee + %s, updated_at = %s
            WHERE order_link_id = %s RETURNING *
            """,
            (price, fee, now, order["order_link_id"]),
        )
        row = await cur.fetchone()
        assert row is not None
        return row

    async def _apply(
        self,
        conn: AsyncConnection[Any],
        symbol: str,
        side: str,
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
    ) -> Decimal:
        """Book one execution on the position; returns its fee."""
        fee = matching.fee(qty, price, fee_rate)
        await _insert_execution(
            conn, venue_order_id, order_link_id, symbol, side, price, qty, fee, kind, trigger, now,
        )  # fmt: skip
        await self._add_balance(conn, -fee, now)
        pos = await self._position(conn, symbol)
        change = matching.apply_fill(
            Side(pos["side"]) if pos is not None else None,
            pos["size"] if pos is not None else Decimal(0),
            pos["avg_price"] if pos is not None else Decimal(0),
            Side(side), qty, price,
        )  # fmt: skip
        if pos is None or change.closed_qty == 0:
            await self._increase(
                conn, symbol, side, change.size, change.avg_price, fee, now, stop_loss, take_profit
            )
            return fee
        closing, realised = change.closed_qty, change.realised
        close_fee, open_fee = matching.split_fee(fee, closing, qty)
        await self._add_balance(conn, realised, now)
        remaining = change.size if not change.flipped else Decimal(0)
        if remaining > 0:
            await conn.execute(
                """
                UPDATE paper_positions SET size = %s, fees = fees + %s, realised_pnl = realised_pnl + %s,
                       closed_qty = closed_qty + %s, closed_value = closed_value + %s, updated_at = %s
                WHERE symbol = %s
                """,
                (remaining, fee, realised, closing, closing * price, now, symbol),
            )
        else:
            closed_qty = pos["closed_qty"] + closing
            avg_exit = (pos["closed_value"] + closing * price) / closed_qty
            await conn.execute(
                """
                INSERT INTO paper_closed_pnl (venue_order_id, symbol, side, qty, avg_entry_price,
                    avg_exit_price, closed_pnl, leverage, created_at, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (venue_order_id) DO NOTHING
                """,
                (
                    venue_order_id, symbol, side, closed_qty, pos["avg_price"], avg_exit,
                    pos["realised_pnl"] + realised - pos["fees"] - close_fee, pos["leverage"],
                    pos["opened_at"], now,
                ),
            )  # fmt: skip
            await conn.execute("DELETE FROM paper_positions WHERE symbol = %s", (symbol,))
        if change.flipped:  # a larger opposite order flips the position
            await self._increase(
                conn, symbol, side, change.size, change.avg_price, open_fee, now, stop_loss,
                take_profit,
            )  # fmt: skip
        return fee

    async def _increase(
        self,
        conn: AsyncConnection[Any],
        symbol: str,
        side: str,
        size: Decimal,
        avg_price: Decimal,
        fee: Decimal,
        now: datetime,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
    ) -> None:
        """Open the position or add to it: `size` and `avg_price` are its new figures
        (matching.apply_fill), `fee` the fill's."""
        lev = await self._leverage(conn, symbol)
        await conn.execute(
            """
            INSERT INTO paper_positions (symbol, side, size, avg_price, leverage, stop_loss, take_profit,
                                         fees, last_funding_at, opened_at, updated_at)
            VALUES (%(s)s, %(side)s, %(q)s, %(p)s, %(lev)s, %(sl)s, %(tp)s, %(fee)s, %(now)s, %(now)s, %(now)s)
            ON CONFLICT (symbol) DO UPDATE SET
                avg_price = %(p)s,
                size = %(q)s,
                fees = paper_positions.fees + %(fee)s,
                stop_loss = COALESCE(%(sl)s, paper_positions.stop_loss),
                take_profit = COALESCE(%(tp)s, paper_positions.take_profit),
                updated_at = %(now)s
            """,
            {"s": symbol, "side": side, "q": size, "p": avg_price, "lev": lev, "sl": stop_loss,
             "tp": take_profit, "fee": fee, "now": now},
        )  # fmt: skip

    # --- account ------------------------------------------------------------------------------------

    def _locked(self, durable: bool = True) -> _Locked:
        return _Locked(self, durable)

    async def _ensure_account(self, conn: AsyncConnection[Any]) -> None:
        if self._account_ready:
            return
        await conn.execute(
            "INSERT INTO paper_account (account, balance, start_equity) VALUES (%s, %s, %s) "
            "ON CONFLICT (account) DO NOTHING",
            (ACCOUNT, self.start_equity, self.start_equity),
        )
        self._account_ready = True

    async def _balance(self, conn: AsyncConnection[Any]) -> Decimal:
        await self._ensure_account(conn)
        cur = await conn.execute("SELECT balance FROM paper_account WHERE account = %s", (ACCOUNT,))
        row = await cur.fetchone()
        assert row is not None
        return Decimal(row[0])

    async def _add_balance(
        self, conn: AsyncConnection[Any], amount: Decimal, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE paper_account SET balance = balance + %s, updated_at = %s WHERE account = %s",
            (amount, now, ACCOUNT),
        )

    async def _available(self, conn: AsyncConnection[Any]) -> Decimal:
        """Balance minus the margin of positions and of resting opening orders."""
        cur = await conn.execute(
            """
            SELECT COALESCE((SELECT sum(size * avg_price / leverage) FROM paper_positions), 0)
                 + COALESCE((SELECT sum((o.qty - o.filled_qty) * o.price / COALESCE(l.leverage, %s))
                             FROM paper_orders o LEFT JOIN paper_leverage l USING (symbol)
                             WHERE o.status IN ('new', 'partially_filled') AND NOT o.reduce_only), 0)
            """,
            (Decimal(str(self.fees.default_leverage)),),
        )
        row = await cur.fetchone()
        used = Decimal(row[0]) if row else Decimal(0)
        return await self._balance(conn) - used

    async def _leverage(self, conn: AsyncConnection[Any], symbol: str) -> Decimal:
        cur = await conn.execute("SELECT leverage FROM paper_leverage WHERE symbol = %s", (symbol,))
        row = await cur.fetchone()
        return Decimal(row[0]) if row else Decimal(str(self.fees.default_leverage))

    async def _order_row(self, conn: AsyncConnection[Any], order_link_id: str) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM paper_orders WHERE order_link_id = %s", (order_link_id,))
        return await cur.fetchone()

    async def _position(self, conn: AsyncConnection[Any], symbol: str) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM paper_positions WHERE symbol = %s", (symbol,))
        return await cur.fetchone()

    async def _position_rows(self, conn: AsyncConnection[Any]) -> list[Row]:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM paper_positions ORDER BY symbol")
        return await cur.fetchall()

    async def _all_positions(
        self, conn: AsyncConnection[Any], quotes: dict[str, Quote]
    ) -> list[Position]:
        return [_position(r, quotes.get(r["symbol"])) for r in await self._position_rows(conn)]


class _Locked:
    """`async with venue._locked() as conn`: a transaction holding the account row lock."""

    def __init__(self, venue: PaperVenue, durable: bool = True) -> None:
        self.venue = venue
        self.durable = durable

    async def __aenter__(self) -> AsyncConnection[Any]:
        self._cm = self.venue.pool.connection()
        conn = await self._cm.__aenter__()
        self._tx = conn.transaction()
        await self._tx.__aenter__()
        if not self.durable:
            await conn.execute("SET LOCAL synchronous_commit TO OFF")
        # an advisory lock, not a row lock: it also serialises the very first calls, when the
        # account row is not committed yet (FOR UPDATE on an invisible row locks nothing)
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PAPER_LOCK,))
        await self.venue._ensure_account(conn)
        return conn

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._tx.__aexit__(*exc)
        finally:
            await self._cm.__aexit__(*exc)


# --- rows → venue dataclasses ----------------------------------------------------------------------


async def _insert_order(
    conn: AsyncConnection[Any], req: OrderRequest, status: str, reason: str | None, now: datetime
) -> Row:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """
        INSERT INTO paper_orders (order_link_id, venue_order_id, symbol, side, order_type, qty, price,
            time_in_force, reduce_only, status, stop_loss, take_profit, reject_reason, created_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *
        """,
        (
            req.order_link_id, str(uuid.uuid4()), req.symbol, req.side, req.order_type, req.qty,
            req.price, req.time_in_force, req.reduce_only, status, req.stop_loss, req.take_profit,
            reason, now, now,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return row


async def _set_status(
    conn: AsyncConnection[Any], order_link_id: str, status: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE paper_orders SET status = %s, updated_at = %s WHERE order_link_id = %s",
        (status, now, order_link_id),
    )


async def _insert_execution(
    conn: AsyncConnection[Any],
    venue_order_id: str,
    order_link_id: str | None,
    symbol: str,
    side: str,
    price: Decimal,
    qty: Decimal,
    fee: Decimal,
    kind: ExecKind,
    trigger: Trigger | None,
    at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO paper_executions (exec_id, time, venue_order_id, order_link_id, symbol, side, price,
                                      qty, fee, kind, trigger)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (str(uuid.uuid4()), at, venue_order_id, order_link_id, symbol, side, price, qty, fee,
         kind, trigger),
    )  # fmt: skip


def _liq_price(pos: Row) -> Decimal:
    return matching.liquidation_price(
        Side(pos["side"]), Decimal(pos["avg_price"]), Decimal(pos["leverage"])
    )


def _order(r: Row, duplicate: bool = False) -> Order:
    return Order(
        order_link_id=r["order_link_id"], venue_order_id=r["venue_order_id"], symbol=r["symbol"],
        side=Side(r["side"]), order_type=OrderType(r["order_type"]), qty=r["qty"], price=r["price"],
        status=OrderStatus(r["status"]), filled_qty=r["filled_qty"], avg_fill_price=r["avg_fill_price"],
        fee=r["fee"], reduce_only=r["reduce_only"], created_at=r["created_at"],
        updated_at=r["updated_at"], stop_loss=r["stop_loss"], take_profit=r["take_profit"],
        reject_reason=r["reject_reason"], duplicate=duplicate,
    )  # fmt: skip


def _position(r: Row, q: Quote | None) -> Position:
    mark = _d(q.mark) if q is not None else None
    unrealised = (
        matching.unrealised_pnl(Side(r["side"]), r["size"], r["avg_price"], mark)
        if mark is not None
        else None
    )
    return Position(
        symbol=r["symbol"], side=Side(r["side"]), size=r["size"], avg_price=r["avg_price"],
        mark_price=mark, leverage=r["leverage"], unrealised_pnl=unrealised,
        stop_loss=r["stop_loss"], take_profit=r["take_profit"], liq_price=_liq_price(r),
        updated_at=r["updated_at"], opened_at=r["opened_at"], fees=r["fees"],
    )  # fmt: skip


def _fill(r: Row) -> Fill:
    return Fill(
        exec_id=r["exec_id"], venue_order_id=r["venue_order_id"], order_link_id=r["order_link_id"],
        symbol=r["symbol"], side=Side(r["side"]), price=r["price"], qty=r["qty"], fee=r["fee"],
        time=r["time"], kind=ExecKind(r["kind"]),
        trigger=Trigger(r["trigger"]) if r["trigger"] is not None else None,
    )  # fmt: skip


def _closed(r: Row) -> ClosedPnl:
    return ClosedPnl(
        venue_order_id=r["venue_order_id"], symbol=r["symbol"], side=Side(r["side"]), qty=r["qty"],
        avg_entry_price=r["avg_entry_price"], avg_exit_price=r["avg_exit_price"],
        closed_pnl=r["closed_pnl"], leverage=r["leverage"], created_at=r["created_at"],
        updated_at=r["updated_at"],
    )  # fmt: skip
