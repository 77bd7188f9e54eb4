"""The paper Polymarket venue: taker orders filled against the current CLOB book, books in PostgreSQL.

- A buy walks the asks up to its limit, a sell the bids down to its limit; what the book cannot
  fill at once is cancelled (FAK), so an order is `filled`, `partially_filled` (the rest
  cancelled) or `cancelled` (nothing at or inside the limit) — or `rejected` with a reason.
- Fee: the market's taker fee `C × rate × (p(1−p))^exponent` per fill
  (`quantcore.trading.poly.taker_fee`), charged in cash.
- Rules checked before anything fills: the market is known and open (poly_markets), the price
  is inside (0, 1) on the book's tick grid, the tick the order was priced with is still the
  book's tick, the size is at least the book's minimum, the cash covers the worst case.
- A resolved market redeems its holdings: 1 a share for the winning token, 0 for the others.

Every mutation runs in one transaction holding the account row lock, so replicas never
interleave half-applied fills. `order_id` is the idempotency key: placing an order that exists
returns it with `duplicate=True` and fills nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from quantcore.errors import PermanentError
from quantcore.logging import get_logger
from quantcore.model.poly import PolyBook
from quantcore.model.trading import OrderStatus, Side
from quantcore.trading import poly as rules
from quantcore.venues.poly import (
    BookSource,
    PolyEquity,
    PolyHolding,
    PolyOrder,
    PolyOrderRequest,
    PolyVenueName,
)

log = get_logger(component="venue.poly_paper")
ACCOUNT = "poly_paper"
ZERO = Decimal(0)
Row = dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def _order(row: Row, duplicate: bool = False) -> PolyOrder:
    return PolyOrder(
        order_id=row["order_id"],
        condition_id=row["condition_id"],
        token_id=row["token_id"],
        side=Side(row["side"]),
        limit=row["limit_price"],
        shares=row["shares"],
        filled=row["filled"],
        avg_price=row["avg_price"],
        fee=row["fee"],
        status=OrderStatus(row["status"]),
        reason=row["reason"],
        created_at=row["created_at"],
        duplicate=duplicate,
    )


def _holding(row: Row) -> PolyHolding:
    return PolyHolding(
        condition_id=row["condition_id"],
        token_id=row["token_id"],
        shares=row["shares"],
        cost=row["cost"],
        entry_shares=row["entry_shares"],
        realized_pnl=row["realized_pnl"],
    )


class PaperPolyVenue:
    name: PolyVenueName = "paper"

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        books: BookSource,
        start_equity: float,
        fees: rules.FeeSchedule | None = None,
    ) -> None:
        self.pool = pool
        self.books = books
        self.start_equity = _d(start_equity)
        self.fees = fees or rules.FeeSchedule()

    # --- orders ---------------------------------------------------------------------------------

    async def place_order(self, req: PolyOrderRequest) -> PolyOrder:
        async with self.pool.connection() as conn:
            existing = await self._order_row(conn, req.order_id)
        if existing is not None:  # no book fetch, no lock: a replayed signal costs one read
            return _order(existing, duplicate=True)
        book: PolyBook | None = None
        reason: str | None = None
        try:
            book = await self.books.book(req.token_id)
        except PermanentError as exc:
            reason = f"no_book: {exc}"
        # an ExternalError that is temporary propagates: nothing was placed, retry later
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn)
            existing = await self._order_row(conn, req.order_id)
            if existing is not None:
                return _order(existing, duplicate=True)
            if reason is None:
                reason = await self._refusal(conn, req, book)
            now = _now()
            if reason is not None or book is None:
                row = await self._insert(conn, req, OrderStatus.REJECTED, reason, now)
                log.info("poly paper order rejected", order_id=req.order_id, reason=reason)
                return _order(row)
            return _order(await self._fill(conn, req, book, now))

    async def _refusal(
        self, conn: AsyncConnection[Any], req: PolyOrderRequest, book: PolyBook | None
    ) -> str | None:
        cur = await conn.execute(
            "SELECT closed, token_ids FROM poly_markets WHERE condition_id = %s",
            (req.condition_id,),
        )
        market = await cur.fetchone()
        if market is None:
            return "unknown_market: not in poly_markets"
        if market[0]:
            return "market_closed: the market is closed or resolved"
        if req.token_id not in market[1]:
            return "unknown_token: not an outcome of this market"
        if book is None:
            return "no_book"
        tick = _d(book.tick_size) if book.tick_size is not None else rules.DEFAULT_TICK
        min_size = _d(book.min_order_size) if book.min_order_size is not None else ZERO
        if tick != req.tick:
            return f"tick_size_changed: priced with {req.tick}, the book's tick is now {tick}"
        try:
            market_rules = rules.MarketRules(tick=tick, min_size=min_size, fees=self.fees)
            rules.check_order(req.limit, req.shares, market_rules)
        except rules.RuleError as err:
            return str(err)
        side = book.asks if req.side is Side.BUY else book.bids
        if not side:
            return "no_liquidity: the book has no " + ("asks" if req.side is Side.BUY else "bids")
        if req.side is Side.BUY:
            worst = rules.buy_cost(req.shares, req.limit, self.fees)
            cash = await self._cash(conn)
            if worst > cash:
                return f"insufficient_cash: needs {worst:.2f}, {cash:.2f} available"
        else:
            held = await self._holding_row(conn, req.token_id)
            if held is None or held["shares"] < req.shares:
                return "insufficient_shares: selling more than held"
        return None

    async def _fill(
        self, conn: AsyncConnection[Any], req: PolyOrderRequest, book: PolyBook, now: datetime
    ) -> Row:
        buy = req.side is Side.BUY
        levels = [
            rules.Level(_d(lv.price), _d(lv.size)) for lv in (book.asks if buy else book.bids)
        ]
        fills = rules.walk_book(levels, buy, req.limit, req.shares)
        filled = sum((f.shares for f in fills), ZERO)
        status = (
            OrderStatus.FILLED
            if filled == req.shares
            else OrderStatus.PARTIALLY_FILLED
            if filled > 0
            else OrderStatus.CANCELLED
        )
        reason = None if status is OrderStatus.FILLED else "fak: the rest found no liquidity"
        await self._insert(conn, req, status, reason, now)
        fee_total = ZERO
        notional = ZERO
        for f in fills:
            fee = rules.taker_fee(f.shares, f.price, self.fees)
            fee_total += fee
            notional += f.shares * f.price
            await conn.execute(
                "INSERT INTO poly_paper_fills (order_id, token_id, side, price, shares, fee, time) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (req.order_id, req.token_id, req.side.value, f.price, f.shares, fee, now),
            )
        if filled > 0:
            await self._apply(conn, req, filled, notional, fee_total, now)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "UPDATE poly_paper_orders SET filled = %s, avg_price = %s, fee = %s "
            "WHERE order_id = %s RETURNING *",
            (filled, (notional / filled) if filled > 0 else None, fee_total, req.order_id),
        )
        updated = await cur.fetchone()
        assert updated is not None
        return updated

    async def _apply(
        self,
        conn: AsyncConnection[Any],
        req: PolyOrderRequest,
        filled: Decimal,
        notional: Decimal,
        fee: Decimal,
        now: datetime,
    ) -> None:
        held = await self._holding_row(conn, req.token_id)
        if req.side is Side.BUY:
            await self._add_cash(conn, -(notional + fee))
            await conn.execute(
                "INSERT INTO poly_paper_holdings (token_id, condition_id, shares, cost, entry_shares, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (token_id) DO UPDATE SET "
                "shares = poly_paper_holdings.shares + EXCLUDED.shares, "
                "cost = poly_paper_holdings.cost + EXCLUDED.cost, "
                "entry_shares = CASE WHEN poly_paper_holdings.shares = 0 THEN EXCLUDED.shares "
                "ELSE GREATEST(poly_paper_holdings.entry_shares, "
                "poly_paper_holdings.shares + EXCLUDED.shares) END, "
                "updated_at = EXCLUDED.updated_at",
                (req.token_id, req.condition_id, filled, notional + fee, filled, now),
            )
            return
        assert held is not None  # _refusal checked the shares are held
        cost_out = held["cost"] * filled / held["shares"]
        proceeds = notional - fee
        await self._add_cash(conn, proceeds)
        await conn.execute(
            "UPDATE poly_paper_holdings SET shares = shares - %s, cost = cost - %s, "
            "realized_pnl = realized_pnl + %s, updated_at = %s WHERE token_id = %s",
            (filled, cost_out, proceeds - cost_out, now, req.token_id),
        )

    async def resolve(self, condition_id: str, winner_token_id: str) -> list[PolyHolding]:
        now = _now()
        out: list[PolyHolding] = []
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM poly_paper_holdings WHERE condition_id = %s AND shares > 0 "
                "ORDER BY token_id FOR UPDATE",
                (condition_id,),
            )
            for held in await cur.fetchall():
                payout = held["shares"] if held["token_id"] == winner_token_id else ZERO
                await self._add_cash(conn, payout)
                await cur.execute(
                    "UPDATE poly_paper_holdings SET shares = 0, cost = 0, "
                    "realized_pnl = realized_pnl + %s, updated_at = %s WHERE token_id = %s "
                    "RETURNING *",
                    (payout - held["cost"], now, held["token_id"]),
                )
                row = await cur.fetchone()
                assert row is not None
                out.append(_holding(row))
        return out

    # --- reads ----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> PolyOrder | None:
        async with self.pool.connection() as conn:
            row = await self._order_row(conn, order_id)
        return None if row is None else _order(row)

    async def orders(self, since: datetime | None = None) -> list[PolyOrder]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM poly_paper_orders WHERE %s::timestamptz IS NULL OR created_at >= %s "
                "ORDER BY created_at, order_id",
                (since, since),
            )
            return [_order(r) for r in await cur.fetchall()]

    async def holdings(self) -> list[PolyHolding]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM poly_paper_holdings WHERE shares > 0 ORDER BY token_id"
            )
            return [_holding(r) for r in await cur.fetchall()]

    async def fill_count(self, order_id: str) -> int:
        """Fills the venue booked for one order (what the duplicate tests count)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM poly_paper_fills WHERE order_id = %s", (order_id,)
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def equity(self) -> PolyEquity:
        async with self.pool.connection() as conn:
            cash = await self._cash(conn)
            cur = await conn.execute(
                "SELECT COALESCE(sum(cost), 0) FROM poly_paper_holdings WHERE shares > 0"
            )
            row = await cur.fetchone()
        return PolyEquity(
            cash=cash, exposure=Decimal(row[0]) if row else ZERO, start=self.start_equity
        )

    async def close(self) -> None:
        return None

    # --- helpers --------------------------------------------------------------------------------

    async def _lock(self, conn: AsyncConnection[Any]) -> None:
        await self._ensure_account(conn)
        await conn.execute(
            "SELECT 1 FROM poly_paper_account WHERE account = %s FOR UPDATE", (ACCOUNT,)
        )

    async def _ensure_account(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(
            "INSERT INTO poly_paper_account (account, cash, start_equity) VALUES (%s, %s, %s) "
            "ON CONFLICT (account) DO NOTHING",
            (ACCOUNT, self.start_equity, self.start_equity),
        )

    async def _cash(self, conn: AsyncConnection[Any]) -> Decimal:
        await self._ensure_account(conn)
        cur = await conn.execute(
            "SELECT cash FROM poly_paper_account WHERE account = %s", (ACCOUNT,)
        )
        row = await cur.fetchone()
        assert row is not None
        return Decimal(row[0])

    async def _add_cash(self, conn: AsyncConnection[Any], amount: Decimal) -> None:
        await conn.execute(
            "UPDATE poly_paper_account SET cash = cash + %s, updated_at = now() WHERE account = %s",
            (amount, ACCOUNT),
        )

    async def _order_row(self, conn: AsyncConnection[Any], order_id: str) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM poly_paper_orders WHERE order_id = %s", (order_id,))
        return await cur.fetchone()

    async def _holding_row(self, conn: AsyncConnection[Any], token_id: str) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM poly_paper_holdings WHERE token_id = %s", (token_id,))
        return await cur.fetchone()

    async def _insert(
        self,
        conn: AsyncConnection[Any],
        req: PolyOrderRequest,
        status: OrderStatus,
        reason: str | None,
        now: datetime,
    ) -> Row:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "INSERT INTO poly_paper_orders (order_id, condition_id, token_id, side, limit_price, "
            "shares, tick, status, reason, signal_key, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                req.order_id, req.condition_id, req.token_id, req.side.value, req.limit,
                req.shares, req.tick, status.value, reason, req.signal_key, now,
            ),
        )  # fmt: skip
        row = await cur.fetchone()
        assert row is not None
        return row
