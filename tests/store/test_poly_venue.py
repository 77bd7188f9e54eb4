"""The paper Polymarket venue against real PostgreSQL: book walking, partial fills, fees,
market rules, idempotency (fills counted at the venue), redemption."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from psycopg_pool import AsyncConnectionPool

from quantcore.errors import Rejected
from quantcore.model.poly import BookLevel, PolyBook, PolyMarket, PolyOutcome
from quantcore.model.trading import Side
from quantcore.store import poly as store
from quantcore.store.poly_venue import PaperPolyVenue
from quantcore.trading.poly import FeeSchedule, taker_fee
from quantcore.venues.poly import PolyOrderRequest

D = Decimal
NOW = datetime(2026, 12, 1, tzinfo=UTC)
COND = "0x" + "ab" * 32
YES, NO = "1111", "2222"
FEES = FeeSchedule(rate=D("0.03"), exponent=1)


class Books:
    """The CLOB as a test sets it (the process boundary: the real client reads the simulator)."""

    def __init__(self) -> None:
        self.by_token: dict[str, PolyBook] = {}

    def set(self, token: str, asks=(), bids=(), tick: float = 0.01, min_size: float = 5) -> None:
        self.by_token[token] = PolyBook(
            condition_id=COND, token_id=token, time=NOW,
            asks=tuple(BookLevel(price=p, size=s) for p, s in asks),
            bids=tuple(BookLevel(price=p, size=s) for p, s in bids),
            tick_size=tick, min_order_size=min_size,
        )  # fmt: skip

    async def book(self, token_id: str) -> PolyBook:
        if token_id not in self.by_token:
            raise Rejected(f"No orderbook exists for the requested token id {token_id}", 404)
        return self.by_token[token_id]


async def market(pool: AsyncConnectionPool, closed: bool = False, cond: str = COND) -> None:
    m = PolyMarket(
        market_id="1", condition_id=cond, question="Will it?", source="sim", closed=closed,
        outcomes=(PolyOutcome(name="Yes", token_id=YES), PolyOutcome(name="No", token_id=NO)),
    )  # fmt: skip
    async with pool.connection() as conn:
        await store.upsert_markets(conn, [m], NOW)


def buy(
    oid: str, shares: str, limit: str, tick: str = "0.01", token: str = YES
) -> PolyOrderRequest:
    return PolyOrderRequest(oid, COND, token, Side.BUY, D(limit), D(shares), D(tick))


def sell(oid: str, shares: str, limit: str) -> PolyOrderRequest:
    return PolyOrderRequest(oid, COND, YES, Side.SELL, D(limit), D(shares), D("0.01"))


async def test_buy_walks_the_asks_partially_and_charges_the_fee(fresh_pool) -> None:
    await market(fresh_pool)
    books = Books()
    books.set(YES, asks=[(0.40, 10), (0.41, 5), (0.45, 100)])
    v = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FEES)
    o = await v.place_order(buy("o1", "30", "0.42"))
    assert o.status == "partially_filled" and o.filled == D(15)
    fee = taker_fee(D(10), D("0.40"), FEES) + taker_fee(D(5), D("0.41"), FEES)
    assert o.fee == fee and o.avg_price == (D(4) + D("2.05")) / 15
    [h] = await v.holdings()
    assert (h.shares, h.cost, h.entry_shares) == (D(15), D("6.05") + fee, D(15))
    eq = await v.equity()
    assert eq.cash == D(1000) - D("6.05") - fee and eq.equity == D(1000)
    # sell 10 into the bids: realized pnl = proceeds - fee - cost share
    books.set(YES, bids=[(0.50, 100)])
    s = await v.place_order(sell("o2", "10", "0.50"))
    assert s.status == "filled" and s.filled == D(10)
    [h] = await v.holdings()
    assert h.shares == D(5) and h.entry_shares == D(15)
    cost_out = (D("6.05") + fee) * 10 / 15
    assert h.realized_pnl == D(5) - taker_fee(D(10), D("0.50"), FEES) - cost_out


async def test_nothing_inside_the_limit_cancels(fresh_pool) -> None:
    await market(fresh_pool)
    books = Books()
    books.set(YES, asks=[(0.60, 100)])
    v = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FEES)
    o = await v.place_order(buy("o1", "10", "0.55"))
    assert o.status == "cancelled" and o.filled == 0
    assert not await v.holdings() and (await v.equity()).cash == D(1000)


async def test_refusals_carry_a_reason_and_place_nothing(fresh_pool) -> None:
    await market(fresh_pool)
    await market(fresh_pool, closed=True, cond="0x" + "cd" * 32)
    books = Books()
    books.set(YES, asks=[], bids=[(0.40, 10)])
    books.set(NO, asks=[(0.50, 100)], tick=0.001)
    v = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FEES)
    closed = PolyOrderRequest("c", "0x" + "cd" * 32, YES, Side.BUY, D("0.5"), D(10), D("0.01"))
    unknown = PolyOrderRequest("u", "0x" + "ef" * 32, YES, Side.BUY, D("0.5"), D(10), D("0.01"))
    cases = {
        "no_liquidity": buy("a", "10", "0.50"),
        "tick_size_changed": buy("b", "10", "0.50", token=NO),
        "market_closed": closed,
        "unknown_market": unknown,
        "price_out_of_range": buy("d", "10", "1.00"),
        "below_min_size": buy("e", "4", "0.40"),
        "insufficient_shares": sell("f", "10", "0.40"),
        "insufficient_cash": buy("g", "5000", "0.40", tick="0.001", token=NO),
    }
    for reason, req in cases.items():
        o = await v.place_order(req)
        assert o.status == "rejected" and o.reason is not None and o.reason.startswith(reason), o
    assert not await v.holdings() and (await v.equity()).cash == D(1000)
    for req in cases.values():
        assert await v.fill_count(req.order_id) == 0


async def test_same_order_id_fills_once_even_concurrently(fresh_pool) -> None:
    await market(fresh_pool)
    books = Books()
    books.set(YES, asks=[(0.40, 1000)])
    v1 = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FEES)
    v2 = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FEES)  # a replica
    got = await asyncio.gather(*(v.place_order(buy("same", "20", "0.40")) for v in (v1, v2, v1)))
    assert sorted(o.duplicate for o in got) == [False, True, True]
    assert await v1.fill_count("same") == 1  # counted at the venue's fills (no key on order_id)
    [h] = await v1.holdings()
    assert h.shares == D(20)


async def test_resolution_redeems_winner_at_one(fresh_pool) -> None:
    await market(fresh_pool)
    books = Books()
    books.set(YES, asks=[(0.40, 100)])
    books.set(NO, asks=[(0.55, 100)])
    v = PaperPolyVenue(fresh_pool, books, start_equity=1000, fees=FeeSchedule())
    await v.place_order(buy("y", "10", "0.40"))
    await v.place_order(buy("n", "10", "0.55", token=NO))
    redeemed = {h.token_id: h for h in await v.resolve(COND, YES)}
    assert redeemed[YES].realized_pnl == D(6) and redeemed[NO].realized_pnl == D("-5.5")
    assert not await v.holdings()
    assert (await v.equity()).cash == D(1000) - D(4) - D("5.5") + D(10)
