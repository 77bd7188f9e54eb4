"""The live Polymarket venue (POLY_TRADING_MODE=live): CLOB V2 through Polymarket's client
(quantcore.adapters.polymarket.clob), behind quantcore.venues.poly.PolyVenue.

- Orders: our rules first (the book's tick unchanged since pricing, tick grid, minimum size,
  liquidity on the side taken: refused with the reason, nothing signed); then the order is
  signed, written to `poly_live_orders` with its hash (the CLOB's order id) BEFORE it is posted,
  and posted FAK. A replayed order id returns the stored order (`duplicate=True`); one a crash
  left unanswered is looked up at the CLOB by hash and re-posted unchanged only if absent.
- Fills are never assumed from "matched": an order's fill is what the Data API trade feed of our
  funder address shows for the order's settlement transactions (from the post answer, else the
  CLOB trades), waited for up to POLY_CONFIRM_TIMEOUT_S and re-checked on every read after.
- Holdings come from the Data API positions feed; cash from the CLOB's collateral balance.
- Geoblock, at start: an OFAC jurisdiction refuses to start; a close-only one (Polymarket's
  geoblock answers blocked from, e.g., the US or the UK: positions may be closed, none opened)
  starts the venue close-only: buys are refused with the reason before anything is signed,
  sells (exits) go through.
- Resolution: `resolve` records the outcome (`poly_live_resolutions`) and reports the market's
  holdings closed (the trader books winner 1 / loser 0 a share). Redeeming is an on-chain
  transaction (a deposit-wallet batch through Polymarket's relayer), which this venue does not
  send: each resolved holding gets a warning line "awaiting redeem", and `awaiting_redeem()`
  lists the resolved positions the wallet still holds at Polymarket (its positions feed) until
  Polymarket's auto-redeem or a manual redeem pays them out.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from quantcore.adapters.polymarket.clob import (
    TRADE_FAILED,
    ClobAccount,
    ClobRejected,
    ClobTrader,
    PostAnswer,
    SignedOrder,
    geoblock,
)
from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.config import LIVE_CONFIRMATION_PHRASE, ConfigError, Settings
from quantcore.errors import ExternalError, PermanentError
from quantcore.logging import get_logger
from quantcore.model.poly import PolyBook, PolyPosition, PolyTrade
from quantcore.model.trading import OrderStatus, Side
from quantcore.trading import poly as rules
from quantcore.venues.poly import (
    PolyEquity,
    PolyHolding,
    PolyOrder,
    PolyOrderRequest,
    PolyVenueName,
)

log = get_logger(component="poly_live_venue")
Row = dict[str, Any]
ZERO = Decimal(0)
CONFIRM_POLL_S = 0.5


def _d(value: float) -> Decimal:
    return Decimal(str(value))


def _order(row: Row, duplicate: bool = False) -> PolyOrder:
    return PolyOrder(
        order_id=row["order_id"], condition_id=row["condition_id"], token_id=row["token_id"],
        side=Side(row["side"]), limit=row["limit_price"], shares=row["shares"],
        filled=row["filled"], avg_price=row["avg_price"], fee=row["fee"],
        status=OrderStatus(row["status"]), reason=row["reason"], created_at=row["created_at"],
        duplicate=duplicate,
    )  # fmt: skip


def order_refusal(req: PolyOrderRequest, book: PolyBook, fees: rules.FeeSchedule) -> str | None:
    """Our own rules before anything is signed (the same checks as the paper venue's)."""
    tick = _d(book.tick_size) if book.tick_size is not None else rules.DEFAULT_TICK
    min_size = _d(book.min_order_size) if book.min_order_size is not None else ZERO
    if tick != req.tick:
        return f"tick_size_changed: priced with {req.tick}, the book's tick is now {tick}"
    try:
        rules.check_order(req.limit, req.shares, rules.MarketRules(tick, min_size, fees))
    except rules.RuleError as err:
        return str(err)
    if not (book.asks if req.side is Side.BUY else book.bids):
        return "no_liquidity: the book has no " + ("asks" if req.side is Side.BUY else "bids")
    return None


def confirmed_fill(
    feed: list[PolyTrade], token_id: str, tx_hashes: set[str], fees: rules.FeeSchedule
) -> tuple[Decimal, Decimal | None, Decimal]:
    """(shares, average price, taker fee) of the feed rows settling our transactions."""
    shares = notional = fee = ZERO
    for t in feed:
        if t.tx_hash is None or t.tx_hash.lower() not in tx_hashes or t.token_id != token_id:
            continue
        size, price = _d(t.size), _d(t.price)
        shares += size
        notional += size * price
        fee += rules.taker_fee(size, price, fees)
    return shares, (notional / shares if shares > 0 else None), fee


def unfilled_reason(trades: int, settled: int, in_feed: int) -> str:
    """Why an order filled less than asked: its trades failed to settle, their settlements are
    not in the Data API feed yet (re-checked on later reads), or FAK found no more liquidity."""
    if settled < trades:
        return f"matched but not settled: {trades - settled} of {trades} trades failed or pending"
    if in_feed < settled:
        return f"not in the feed yet: {settled - in_feed} of {settled} settlements"
    return "fak: the rest found no liquidity"


def fill_status(filled: Decimal, shares: Decimal) -> OrderStatus:
    if filled >= shares:
        return OrderStatus.FILLED
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.CANCELLED


@dataclass(frozen=True)
class AwaitingRedeem:
    """A resolved market's shares the wallet still holds at Polymarket (not yet redeemed)."""

    condition_id: str
    token_id: str
    shares: Decimal
    won: bool
    payout: Decimal  # pUSD the redeem pays: the shares if won, else 0


@dataclass(frozen=True)
class OurFills:
    """One token's confirmed fills in poly_live_orders."""

    token_id: str
    condition_id: str
    bought: Decimal
    notional: Decimal  # what the bought shares cost before fees
    fees: Decimal  # buy fees
    sold: Decimal

    @property
    def held(self) -> Decimal:
        return self.bought - self.sold

    def holding(self) -> PolyHolding:
        """Our own books' view, where the positions feed shows nothing."""
        share = self.held / self.bought if self.bought > 0 else ZERO
        return PolyHolding(self.condition_id, self.token_id, self.held,
                           (self.notional + self.fees) * share, self.bought, ZERO)  # fmt: skip


def holding_of(position: PolyPosition, bought: Decimal, buy_fees: Decimal) -> PolyHolding:
    """A Data API position in our words: cost is the held shares at their average price plus
    their share of the buy fees; the entry size is the most shares we bought into it."""
    shares = _d(position.size)
    fee_share = buy_fees * shares / bought if bought > 0 else ZERO
    return PolyHolding(
        condition_id=position.condition_id, token_id=position.token_id, shares=shares,
        cost=shares * _d(position.avg_price) + fee_share, entry_shares=max(bought, shares),
        realized_pnl=_d(position.realized_pnl_usd),
    )  # fmt: skip


class LivePolyVenue:
    name: PolyVenueName = "live"

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        clob: ClobTrader,
        data: PolymarketClient,
        fees: rules.FeeSchedule,
        confirm_timeout_s: float = 30.0,
    ) -> None:
        self.pool = pool
        self.clob = clob
        self.data = data  # Data API reads (trades, positions) and the CLOB book
        self.fees = fees
        self.confirm_timeout_s = confirm_timeout_s
        self.close_only: str | None = None  # why only exits are allowed (a close-only region)
        self._start: Decimal | None = None

    @property
    def user(self) -> str:
        return self.clob.funder.lower()

    # --- orders ---------------------------------------------------------------------------------

    async def place_order(self, req: PolyOrderRequest) -> PolyOrder:
        async with self.pool.connection() as conn:
            row = await self._row(conn, req.order_id)
        if row is not None:
            if row["status"] == OrderStatus.SUBMITTING.value:
                row = await self._recover(row)
            return _order(row, duplicate=True)
        if self.close_only is not None and req.side == Side.BUY:
            return await self._rejected(req, f"close_only: {self.close_only}")
        try:
            book = await self.data.book(req.token_id)
        except PermanentError as exc:
            return await self._rejected(req, f"no_book: {exc}")
        reason = order_refusal(req, book, self.fees)
        if reason is not None:
            return await self._rejected(req, reason)
        try:
            signed = await self.clob.sign(req.token_id, req.side.value, req.limit, req.shares,
                                          req.tick, neg_risk=bool(book.neg_risk))  # fmt: skip
        except ClobRejected as exc:
            return await self._rejected(req, f"venue: {exc.message}")
        async with self.pool.connection() as conn:
            inserted = await self._insert(conn, req, signed)
        if inserted is None:  # another replica wrote this order id first
            async with self.pool.connection() as conn:
                row = await self._row(conn, req.order_id)
            assert row is not None
            return _order(row, duplicate=True)
        return _order(await self._post(inserted, signed))

    async def _post(self, row: Row, signed: SignedOrder) -> Row:
        try:
            answer = await self.clob.post(signed)
        except ClobRejected as exc:
            log.info("poly live order rejected", order_id=row["order_id"], reason=exc.message)
            return await self._update(row["order_id"], status=OrderStatus.REJECTED,
                                      reason=f"venue: {exc.message}")  # fmt: skip
        # a TemporaryError propagates: the row stays 'submitting' and is recovered by hash
        if answer.error is not None:
            return await self._update(row["order_id"], status=OrderStatus.REJECTED,
                                      reason=f"venue: {answer.error}", clob_status=answer.status)  # fmt: skip
        return await self._confirm(row["order_id"], answer, wait=True)

    async def _recover(self, row: Row) -> Row:
        """A crash left this order unanswered: the CLOB knows it by hash, or never got it."""
        found = await self.clob.order(row["order_hash"])
        if found is None:
            log.info("re-posting an order the CLOB never got", order_id=row["order_id"])
            return await self._post(row, SignedOrder(row["order_hash"], row["signed_order"]))
        trade_ids = tuple(str(t) for t in found.get("associate_trades") or ())
        answer = PostAnswer(row["order_hash"], str(found.get("status") or ""), trade_ids, (), None)
        return await self._confirm(row["order_id"], answer, wait=True)

    async def _confirm(self, order_id: str, answer: PostAnswer, wait: bool) -> Row:
        """The order's fill as the Data API trade feed confirms it."""
        tx = {h.lower() for h in answer.tx_hashes}
        if answer.trade_ids and not tx:
            trades = await self.clob.trades(answer.trade_ids)
            tx = {t.tx_hash.lower() for t in trades if t.tx_hash and t.status != TRADE_FAILED}
        async with self.pool.connection() as conn:
            row = await self._row(conn, order_id)
        assert row is not None
        deadline = time.monotonic() + (self.confirm_timeout_s if wait and tx else 0)
        while True:
            feed = await self._feed(row["condition_id"])
            filled, avg, fee = confirmed_fill(feed, row["token_id"], tx, self.fees)
            if filled >= row["shares"] or time.monotonic() >= deadline:
                break
            await asyncio.sleep(CONFIRM_POLL_S)
        status = fill_status(filled, row["shares"])
        seen = {t.tx_hash.lower() for t in feed if t.tx_hash and t.tx_hash.lower() in tx}
        reason = None if status is OrderStatus.FILLED else unfilled_reason(
            len(answer.trade_ids), len(tx), len(seen)
        )  # fmt: skip
        return await self._update(
            order_id, status=status, reason=reason, clob_status=answer.status,
            trade_ids=list(answer.trade_ids), tx_hashes=sorted(tx), filled=filled, avg_price=avg,
            fee=fee,
        )  # fmt: skip

    async def _feed(self, condition_id: str) -> list[PolyTrade]:
        page = await self.data.trades_page(user=self.user, conditions=[condition_id])
        return list(page.items)

    async def _rejected(self, req: PolyOrderRequest, reason: str) -> PolyOrder:
        """Refused before anything was posted: nothing at the CLOB, nothing stored."""
        log.info("poly live order refused", order_id=req.order_id, reason=reason)
        return PolyOrder(
            order_id=req.order_id, condition_id=req.condition_id, token_id=req.token_id,
            side=req.side, limit=req.limit, shares=req.shares, filled=ZERO, avg_price=None,
            fee=ZERO, status=OrderStatus.REJECTED, reason=reason, created_at=datetime.now(UTC),
        )  # fmt: skip

    # --- reads ----------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> PolyOrder | None:
        async with self.pool.connection() as conn:
            row = await self._row(conn, order_id)
        if row is None:
            return None
        if row["status"] == OrderStatus.SUBMITTING.value:
            if await self.clob.order(row["order_hash"]) is None:
                return None  # the CLOB never got it: the caller places it again (same id)
            row = await self._recover(row)
        elif row["status"] != OrderStatus.REJECTED.value and row["filled"] < row["shares"]:
            answer = PostAnswer(row["order_hash"], row["clob_status"] or "",
                                tuple(row["trade_ids"]), tuple(row["tx_hashes"]), None)  # fmt: skip
            if answer.trade_ids:  # settlement may have caught up since
                row = await self._confirm(order_id, answer, wait=False)
        return _order(row)

    async def orders(self, since: datetime | None = None) -> list[PolyOrder]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM poly_live_orders WHERE %s::timestamptz IS NULL OR created_at >= %s "
                "ORDER BY created_at, order_id",
                (since, since),
            )
            return [_order(r) for r in await cur.fetchall()]

    async def holdings(self) -> list[PolyHolding]:
        """What we hold: the positions feed (open, or resolved and not yet redeemed), plus what
        our confirmed fills say we hold where the feed shows nothing (a fill the feed has not
        caught up with, or a position redeemed before we recorded the resolution); markets we
        reported resolved are out."""
        positions = await self._positions()
        books = await self._books()
        resolved = await self._resolved()
        out: dict[str, PolyHolding] = {}
        for p in positions:
            if p.size <= 0 or p.condition_id in resolved:
                continue
            mine = books.get(p.token_id)
            out[p.token_id] = holding_of(
                p, mine.bought if mine else ZERO, mine.fees if mine else ZERO
            )
        for token, mine in books.items():
            if token not in out and mine.condition_id not in resolved and mine.held > 0:
                out[token] = mine.holding()
        return sorted(out.values(), key=lambda h: h.token_id)

    async def _positions(self) -> list[PolyPosition]:
        """The wallet's Data API positions, open and resolved-not-redeemed."""
        positions: list[PolyPosition] = []
        for status in ("OPEN", "REDEEMABLE"):  # REDEEMABLE: resolved, shares not yet redeemed
            cursor: str | None = None
            for _ in range(100):
                page = await self.data.positions_page(self.user, cursor, status=status)
                positions.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        return positions

    async def equity(self) -> PolyEquity:
        cash = await self.clob.cash()
        exposure = sum((h.cost for h in await self.holdings()), ZERO)
        if self._start is None:
            self._start = cash + exposure
        return PolyEquity(cash=cash, exposure=exposure, start=self._start)

    async def resolve(self, condition_id: str, winner_token_id: str) -> list[PolyHolding]:
        """Record the market resolved and report its holdings closed (winner 1, loser 0 a share,
        the trader books the PnL). The pUSD arrives when the position is redeemed on chain
        (Polymarket's relayer / auto-redeem), which this venue does not do: logged as awaiting
        redeem, listed by `awaiting_redeem()` until the wallet no longer holds it."""
        held = [h for h in await self.holdings() if h.condition_id == condition_id]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO poly_live_resolutions (condition_id, winner_token_id) VALUES (%s, %s) "
                "ON CONFLICT (condition_id) DO NOTHING RETURNING condition_id",
                (condition_id, winner_token_id),
            )
            if await cur.fetchone() is None:
                return []  # reported before
        for h in held:
            won = h.token_id == winner_token_id
            log.warning(
                "poly market resolved: outcome recorded, position awaiting redeem (the on-chain "
                "redeem is not sent by this venue; Polymarket's auto-redeem or a manual redeem "
                "pays it)",
                condition_id=condition_id, token_id=h.token_id, shares=str(h.shares), won=won,
                payout=str(h.shares if won else ZERO), wallet=self.user,
            )  # fmt: skip
        return [PolyHolding(h.condition_id, h.token_id, ZERO, ZERO, ZERO, h.realized_pnl)
                for h in held]  # fmt: skip

    async def awaiting_redeem(self) -> list[AwaitingRedeem]:
        """Resolved markets (as recorded by `resolve`) whose shares the wallet's Data API
        positions (OPEN or REDEEMABLE) still show: resolved, not yet redeemed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT condition_id, winner_token_id FROM poly_live_resolutions"
            )
            winners = {r[0]: r[1] for r in await cur.fetchall()}
        out: list[AwaitingRedeem] = []
        for p in await self._positions():
            winner = winners.get(p.condition_id)
            if winner is None or p.size <= 0:
                continue
            shares, won = _d(p.size), p.token_id == winner
            out.append(AwaitingRedeem(p.condition_id, p.token_id, shares, won,
                                      shares if won else ZERO))  # fmt: skip
        return sorted(out, key=lambda a: a.token_id)

    async def close(self) -> None:
        await self.clob.close()

    # --- SQL ------------------------------------------------------------------------------------

    async def _books(self) -> dict[str, OurFills]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT token_id, min(condition_id), "
                "COALESCE(sum(filled) FILTER (WHERE side = 'buy'), 0), "
                "COALESCE(sum(filled * avg_price) FILTER (WHERE side = 'buy'), 0), "
                "COALESCE(sum(fee) FILTER (WHERE side = 'buy'), 0), "
                "COALESCE(sum(filled) FILTER (WHERE side = 'sell'), 0) "
                "FROM poly_live_orders WHERE filled > 0 GROUP BY token_id"
            )
            return {r[0]: OurFills(r[0], r[1], *(Decimal(v) for v in r[2:6]))
                    for r in await cur.fetchall()}  # fmt: skip

    async def _resolved(self) -> set[str]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT condition_id FROM poly_live_resolutions")
            return {r[0] for r in await cur.fetchall()}

    async def _row(self, conn: AsyncConnection[Any], order_id: str) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM poly_live_orders WHERE order_id = %s", (order_id,))
        return await cur.fetchone()

    async def _insert(
        self, conn: AsyncConnection[Any], req: PolyOrderRequest, signed: SignedOrder
    ) -> Row | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "INSERT INTO poly_live_orders (order_id, order_hash, signed_order, condition_id, "
            "token_id, side, limit_price, shares, tick, status, signal_key) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'submitting', %s) "
            "ON CONFLICT (order_id) DO NOTHING RETURNING *",
            (
                req.order_id, signed.order_hash, json.dumps(signed.body), req.condition_id,
                req.token_id, req.side.value, req.limit, req.shares, req.tick, req.signal_key,
            ),
        )  # fmt: skip
        return await cur.fetchone()

    async def _update(self, order_id: str, **values: Any) -> Row:
        if isinstance(values.get("status"), OrderStatus):
            values["status"] = values["status"].value
        sets = ", ".join(f"{k} = %s" for k in values)
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"UPDATE poly_live_orders SET {sets}, updated_at = now() WHERE order_id = %s "
                "RETURNING *",
                (*values.values(), order_id),
            )
            row = await cur.fetchone()
        assert row is not None
        return row


def make_live_venue(
    settings: Settings,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    data: PolymarketClient,
    fees: rules.FeeSchedule,
) -> LivePolyVenue:
    """The live venue the settings describe (the settings check already refused a missing key,
    funder or confirmation phrase)."""
    key = settings.polymarket_private_key
    if key is None or settings.poly_live_confirm != LIVE_CONFIRMATION_PHRASE:
        raise ConfigError(
            "POLY_TRADING_MODE=live needs POLYMARKET_PRIVATE_KEY and POLY_LIVE_CONFIRM"
        )
    account = ClobAccount(
        host=settings.poly_clob_url, private_key=key.get_secret_value(),
        signature_type=settings.poly_signature_type, funder=settings.poly_funder_address,
        chain_id=settings.poly_chain_id,
    )  # fmt: skip
    return LivePolyVenue(pool, ClobTrader(account), data, fees, settings.poly_confirm_timeout_s)


async def start_live(venue: LivePolyVenue, geoblock_url: str, logger: Any) -> None:
    """Before the first order: Polymarket's geoblock verdict on this machine (an unreadable
    answer refuses to start; an OFAC jurisdiction refuses; a close-only one starts the venue for
    exits only), then the API key is derived (L1). Raises ConfigError: the service stops."""
    try:
        verdict = await geoblock(geoblock_url)
    except ExternalError as exc:
        raise ConfigError(
            f"POLY_TRADING_MODE=live refuses to start: geoblock check failed ({exc})"
        ) from exc
    where = f"country {verdict.country}, region {verdict.region}"
    if verdict.access == "blocked":
        raise ConfigError(
            f"POLY_TRADING_MODE=live refuses to start: Polymarket geoblocks this machine ({where})"
        )
    if verdict.access == "close_only":
        venue.close_only = f"Polymarket allows only closing positions from here ({where})"
        logger.warning("live Polymarket venue is close-only: exits only, no new positions",
                       country=verdict.country, region=verdict.region)  # fmt: skip
    try:
        await venue.clob.connect()
    except ExternalError as exc:
        raise ConfigError(
            f"POLY_TRADING_MODE=live refuses to start: API key derivation failed ({exc})"
        ) from exc
    logger.info("live Polymarket venue ready", signer=venue.clob.signer, funder=venue.clob.funder,
                country=verdict.country, access=verdict.access)  # fmt: skip
