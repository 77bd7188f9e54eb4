"""The perps paper venue's books in PostgreSQL (`paper_*` tables): the SQL behind
`quantcore.venues.paper.PaperVenue`, which holds the rules and speaks the venue interface.

Every mutation runs in one transaction holding the venue's advisory lock (`PaperBooks.locked`),
so replicas and the position monitor never interleave half-applied fills. The transaction runs
in pipeline mode: statements whose answer is not needed (the lock, inserts, updates) are queued
and travel with the next read or the COMMIT, so placing a resting order costs two round trips —
the lock with every read the decision needs (`PaperTx.snapshot`), then the writes with the
COMMIT.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from quantcore.model.trading import (
    ClosedPnl,
    ExecKind,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Trigger,
)
from quantcore.venues.paper import BookPosition, OrderContext

ACCOUNT = "paper"
PAPER_LOCK = 0x9A9E_7B00  # pg advisory lock of the paper venue's books
Row = dict[str, Any]

# the margin held: positions at their entry, resting opening orders at their limit
_USED_MARGIN = """
    COALESCE((SELECT sum(size * avg_price / leverage) FROM paper_positions), 0)
  + COALESCE((SELECT sum((o.qty - o.filled_qty) * o.price / COALESCE(l.leverage, %(dlev)s))
              FROM paper_orders o LEFT JOIN paper_leverage l USING (symbol)
              WHERE o.status IN ('new', 'partially_filled') AND NOT o.reduce_only), 0)
"""


class PaperBooks:
    """The books of one paper account (`start_equity` opens it on first use)."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], start_equity: float
    ) -> None:
        self.pool = pool
        self.start_equity = Decimal(str(start_equity))
        self._account_ready = False  # the account row exists (checked once per process)

    @asynccontextmanager
    async def locked(self, durable: bool = True) -> AsyncIterator[PaperTx]:
        """One transaction holding the venue's lock. `durable=False`: the COMMIT does not wait
        for the WAL flush (the caller's next ordinary commit flushes it)."""
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            if not durable:
                await conn.execute("SET LOCAL synchronous_commit TO OFF")
            # an advisory lock, not a row lock: it also serialises the very first calls, when the
            # account row is not committed yet (FOR UPDATE on an invisible row locks nothing)
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PAPER_LOCK,))
            opening = not self._account_ready
            if opening:
                await conn.execute(
                    "INSERT INTO paper_account (account, balance, start_equity) VALUES (%s, %s, %s) "
                    "ON CONFLICT (account) DO NOTHING",
                    (ACCOUNT, self.start_equity, self.start_equity),
                )
            yield PaperTx(conn)
        if opening:
            self._account_ready = True

    # --- reads outside the lock ------------------------------------------------------------------

    async def order(self, order_link_id: str) -> Order | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_orders WHERE order_link_id = %s", (order_link_id,)
            )
            row = await cur.fetchone()
        return None if row is None else _order(row)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_orders WHERE status IN ('new', 'partially_filled') "
                "AND (%s::text IS NULL OR symbol = %s) ORDER BY created_at",
                (symbol, symbol),
            )
            return [_order(r) for r in await cur.fetchall()]

    async def positions(self, symbol: str | None = None) -> list[BookPosition]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM paper_positions WHERE %s::text IS NULL OR symbol = %s ORDER BY symbol",
                (symbol, symbol),
            )
            return [_book_position(r) for r in await cur.fetchall()]

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

    async def balance_and_positions(self) -> tuple[Decimal, list[BookPosition]]:
        """The wallet balance and every open position, in one round trip (one snapshot)."""
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            if not self._account_ready:
                await conn.execute(
                    "INSERT INTO paper_account (account, balance, start_equity) VALUES (%s, %s, %s) "
                    "ON CONFLICT (account) DO NOTHING",
                    (ACCOUNT, self.start_equity, self.start_equity),
                )
            bal = await conn.execute(
                "SELECT balance FROM paper_account WHERE account = %s", (ACCOUNT,)
            )
            pos = conn.cursor(row_factory=dict_row)
            await pos.execute("SELECT * FROM paper_positions ORDER BY symbol")
            row = await bal.fetchone()
            rows = await pos.fetchall()
        assert row is not None
        return Decimal(row[0]), [_book_position(r) for r in rows]


class PaperTx:
    """The books inside one locked transaction (pipeline mode: writes are queued, a read waits
    for everything queued before it)."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    def _cur(self) -> AsyncCursor[Row]:
        return self.conn.cursor(row_factory=dict_row)

    # --- reads -----------------------------------------------------------------------------------

    async def snapshot(
        self, order_link_ids: Sequence[str], symbol: str, default_leverage: Decimal
    ) -> tuple[dict[str, Order], OrderContext]:
        """The orders already holding these link ids and `symbol`'s order context, in the round
        trip that also takes the lock."""
        orders = self._cur()
        await orders.execute(
            "SELECT * FROM paper_orders WHERE order_link_id = ANY(%s)", (list(order_link_ids),)
        )
        ctx = await self._context_query(symbol, default_leverage)
        found = {r["order_link_id"]: _order(r) for r in await orders.fetchall()}
        return found, await _context(ctx)

    async def context(self, symbol: str, default_leverage: Decimal) -> OrderContext:
        return await _context(await self._context_query(symbol, default_leverage))

    async def _context_query(self, symbol: str, default_leverage: Decimal) -> AsyncCursor[Row]:
        cur = self._cur()
        await cur.execute(
            f"""
            SELECT (SELECT balance FROM paper_account WHERE account = %(acct)s) AS balance,
                   {_USED_MARGIN} AS used,
                   COALESCE((SELECT leverage FROM paper_leverage WHERE symbol = %(s)s), %(dlev)s) AS lev,
                   p.*
            FROM (SELECT 1) one LEFT JOIN paper_positions p ON p.symbol = %(s)s
            """,
            {"acct": ACCOUNT, "s": symbol, "dlev": default_leverage},
        )
        return cur

    async def position(self, symbol: str) -> BookPosition | None:
        cur = self._cur()
        await cur.execute("SELECT * FROM paper_positions WHERE symbol = %s", (symbol,))
        row = await cur.fetchone()
        return None if row is None else _book_position(row)

    async def positions(self) -> list[BookPosition]:
        cur = self._cur()
        await cur.execute("SELECT * FROM paper_positions ORDER BY symbol")
        return [_book_position(r) for r in await cur.fetchall()]

    async def leverage(self, symbol: str, default: Decimal) -> Decimal:
        cur = await self.conn.execute(
            "SELECT leverage FROM paper_leverage WHERE symbol = %s", (symbol,)
        )
        row = await cur.fetchone()
        return Decimal(row[0]) if row else default

    async def order(self, order_link_id: str) -> Order | None:
        cur = self._cur()
        await cur.execute("SELECT * FROM paper_orders WHERE order_link_id = %s", (order_link_id,))
        row = await cur.fetchone()
        return None if row is None else _order(row)

    async def open_orders(self) -> list[Order]:
        cur = self._cur()
        await cur.execute(
            "SELECT * FROM paper_orders WHERE status IN ('new', 'partially_filled') "
            "ORDER BY created_at"
        )
        return [_order(r) for r in await cur.fetchall()]

    # --- writes (queued) -------------------------------------------------------------------------

    async def insert_order(
        self, req: OrderRequest, status: OrderStatus, reason: str | None, now: datetime
    ) -> Order:
        order = Order(
            order_link_id=req.order_link_id, venue_order_id=str(uuid.uuid4()), symbol=req.symbol,
            side=req.side, order_type=req.order_type, qty=req.qty, price=req.price, status=status,
            filled_qty=Decimal(0), avg_fill_price=None, fee=Decimal(0), reduce_only=req.reduce_only,
            created_at=now, updated_at=now, stop_loss=req.stop_loss, take_profit=req.take_profit,
            reject_reason=reason,
        )  # fmt: skip
        await self.conn.execute(
            """
            INSERT INTO paper_orders (order_link_id, venue_order_id, symbol, side, order_type, qty,
                price, time_in_force, reduce_only, status, stop_loss, take_profit, reject_reason,
                created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                req.order_link_id, order.venue_order_id, req.symbol, req.side, req.order_type,
                req.qty, req.price, req.time_in_force, req.reduce_only, status, req.stop_loss,
                req.take_profit, reason, now, now,
            ),
        )  # fmt: skip
        return order

    async def mark_filled(self, order: Order, price: Decimal, fee: Decimal, now: datetime) -> Order:
        await self.conn.execute(
            "UPDATE paper_orders SET status = 'filled', filled_qty = qty, avg_fill_price = %s, "
            "fee = fee + %s, updated_at = %s WHERE order_link_id = %s",
            (price, fee, now, order.order_link_id),
        )
        return replace(
            order, status=OrderStatus.FILLED, filled_qty=order.qty, avg_fill_price=price,
            fee=order.fee + fee, updated_at=now,
        )  # fmt: skip

    async def set_status(self, order_link_id: str, status: OrderStatus, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE paper_orders SET status = %s, updated_at = %s WHERE order_link_id = %s",
            (status, now, order_link_id),
        )

    async def amend(
        self, order_link_id: str, qty: Decimal | None, price: Decimal | None, now: datetime
    ) -> Order:
        cur = self._cur()
        await cur.execute(
            "UPDATE paper_orders SET qty = COALESCE(%s, qty), price = COALESCE(%s, price), "
            "updated_at = %s WHERE order_link_id = %s RETURNING *",
            (qty, price, now, order_link_id),
        )
        row = await cur.fetchone()
        assert row is not None
        return _order(row)

    async def cancel(self, symbol: str, order_link_id: str, now: datetime) -> Order | None:
        """Cancel the order if it is open; the order as it is now (None: unknown)."""
        cur = self._cur()
        await cur.execute(
            "UPDATE paper_orders SET status = 'cancelled', updated_at = %s "
            "WHERE order_link_id = %s AND symbol = %s AND status IN ('new', 'partially_filled') "
            "RETURNING *",
            (now, order_link_id, symbol),
        )
        row = await cur.fetchone()
        return _order(row) if row is not None else await self.order(order_link_id)

    async def add_balance(self, amount: Decimal, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE paper_account SET balance = balance + %s, updated_at = %s WHERE account = %s",
            (amount, now, ACCOUNT),
        )

    async def insert_execution(
        self, venue_order_id: str, order_link_id: str | None, symbol: str, side: Side,
        price: Decimal, qty: Decimal, fee: Decimal, kind: ExecKind, trigger: Trigger | None,
        at: datetime,
    ) -> None:  # fmt: skip
        await self.conn.execute(
            """
            INSERT INTO paper_executions (exec_id, time, venue_order_id, order_link_id, symbol, side,
                                          price, qty, fee, kind, trigger)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (str(uuid.uuid4()), at, venue_order_id, order_link_id, symbol, side, price, qty, fee,
             kind, trigger),
        )  # fmt: skip

    async def upsert_position(
        self, symbol: str, side: Side, size: Decimal, avg_price: Decimal, leverage: Decimal,
        fee: Decimal, now: datetime, stop_loss: Decimal | None, take_profit: Decimal | None,
        watch_bar: datetime | None = None,
    ) -> None:  # fmt: skip
        """Open the position or set its new size/average (SL/TP kept unless given). A new one
        filled at a known bar's open is watched on bars from that bar (`watch_bar`)."""
        await self.conn.execute(
            """
            INSERT INTO paper_positions (symbol, side, size, avg_price, leverage, stop_loss, take_profit,
                                         fees, last_funding_at, opened_at, updated_at, watch_bar, watch_from)
            VALUES (%(s)s, %(side)s, %(q)s, %(p)s, %(lev)s, %(sl)s, %(tp)s, %(fee)s, %(now)s, %(now)s, %(now)s,
                    %(wb)s, %(wb)s)
            ON CONFLICT (symbol) DO UPDATE SET
                avg_price = %(p)s,
                size = %(q)s,
                fees = paper_positions.fees + %(fee)s,
                stop_loss = COALESCE(%(sl)s, paper_positions.stop_loss),
                take_profit = COALESCE(%(tp)s, paper_positions.take_profit),
                updated_at = %(now)s
            """,
            {"s": symbol, "side": side, "q": size, "p": avg_price, "lev": leverage, "sl": stop_loss,
             "tp": take_profit, "fee": fee, "now": now, "wb": watch_bar},
        )  # fmt: skip

    async def watched(self, symbol: str, watch_from: datetime | None) -> None:
        """The bars before `watch_from` are seen (None: watch on sampled prices from now on)."""
        await self.conn.execute(
            "UPDATE paper_positions SET watch_from = %s WHERE symbol = %s", (watch_from, symbol)
        )

    async def reduce_position(
        self, symbol: str, remaining: Decimal, fee: Decimal, realised: Decimal, closing: Decimal,
        price: Decimal, now: datetime,
    ) -> None:  # fmt: skip
        await self.conn.execute(
            """
            UPDATE paper_positions SET size = %s, fees = fees + %s, realised_pnl = realised_pnl + %s,
                   closed_qty = closed_qty + %s, closed_value = closed_value + %s, updated_at = %s
            WHERE symbol = %s
            """,
            (remaining, fee, realised, closing, closing * price, now, symbol),
        )

    async def close_position(self, closed: ClosedPnl) -> None:
        """Book the closed PnL record and remove the position."""
        await self.conn.execute(
            """
            INSERT INTO paper_closed_pnl (venue_order_id, symbol, side, qty, avg_entry_price,
                avg_exit_price, closed_pnl, leverage, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (venue_order_id) DO NOTHING
            """,
            (
                closed.venue_order_id, closed.symbol, closed.side, closed.qty,
                closed.avg_entry_price, closed.avg_exit_price, closed.closed_pnl, closed.leverage,
                closed.created_at, closed.updated_at,
            ),
        )  # fmt: skip
        await self.conn.execute("DELETE FROM paper_positions WHERE symbol = %s", (closed.symbol,))

    async def charge_funding(self, symbol: str, fee: Decimal, at: datetime, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE paper_positions SET fees = fees + %s, last_funding_at = %s, updated_at = %s "
            "WHERE symbol = %s",
            (fee, at, now, symbol),
        )

    async def set_trading_stop(
        self, symbol: str, stop_loss: Decimal | None, take_profit: Decimal | None, now: datetime
    ) -> bool:
        """False when there is no position to set them on. A level moved (one set before and
        now another) is watched on sampled prices from here on: the bar in progress may have
        reached it before it was there."""
        cur = await self.conn.execute(
            """
            UPDATE paper_positions SET stop_loss = COALESCE(%(sl)s, stop_loss),
                   take_profit = COALESCE(%(tp)s, take_profit), updated_at = %(now)s,
                   watch_from = CASE
                       WHEN stop_loss IS NOT NULL AND %(sl)s::numeric IS DISTINCT FROM NULL
                            AND %(sl)s::numeric <> stop_loss THEN NULL
                       WHEN take_profit IS NOT NULL AND %(tp)s::numeric IS DISTINCT FROM NULL
                            AND %(tp)s::numeric <> take_profit THEN NULL
                       ELSE watch_from END
            WHERE symbol = %(s)s RETURNING symbol
            """,
            {"sl": stop_loss, "tp": take_profit, "now": now, "s": symbol},
        )
        return await cur.fetchone() is not None

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        await self.conn.execute(
            "INSERT INTO paper_leverage (symbol, leverage) VALUES (%s, %s) "
            "ON CONFLICT (symbol) DO UPDATE SET leverage = EXCLUDED.leverage",
            (symbol, leverage),
        )


# --- rows → records ------------------------------------------------------------------------------


async def _context(cur: AsyncCursor[Row]) -> OrderContext:
    row = await cur.fetchone()
    assert row is not None and row["balance"] is not None, "the paper account row exists"
    position = _book_position(row) if row["symbol"] is not None else None
    return OrderContext(
        position=position, leverage=Decimal(row["lev"]),
        available=Decimal(row["balance"]) - Decimal(row["used"]),
    )  # fmt: skip


def _book_position(r: Row) -> BookPosition:
    return BookPosition(
        symbol=r["symbol"], side=Side(r["side"]), size=r["size"], avg_price=r["avg_price"],
        leverage=r["leverage"], stop_loss=r["stop_loss"], take_profit=r["take_profit"],
        fees=r["fees"], realised_pnl=r["realised_pnl"], closed_qty=r["closed_qty"],
        closed_value=r["closed_value"], last_funding_at=r["last_funding_at"],
        opened_at=r["opened_at"], updated_at=r["updated_at"], watch_bar=r["watch_bar"],
        watch_from=r["watch_from"],
    )  # fmt: skip


def _order(r: Row) -> Order:
    return Order(
        order_link_id=r["order_link_id"], venue_order_id=r["venue_order_id"], symbol=r["symbol"],
        side=Side(r["side"]), order_type=OrderType(r["order_type"]), qty=r["qty"], price=r["price"],
        status=OrderStatus(r["status"]), filled_qty=r["filled_qty"], avg_fill_price=r["avg_fill_price"],
        fee=r["fee"], reduce_only=r["reduce_only"], created_at=r["created_at"],
        updated_at=r["updated_at"], stop_loss=r["stop_loss"], take_profit=r["take_profit"],
        reject_reason=r["reject_reason"],
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
