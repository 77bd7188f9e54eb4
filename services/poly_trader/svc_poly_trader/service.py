"""Polymarket copy trader (agent `poly_copy`): poly signals → capped taker orders, gradual exits.

Per signal (consumer group `poly_trader`: replicas share the stream, each signal goes to one):
1. Decided once: `poly_copy_decisions` is keyed by the signal's natural key (condition, token,
   time), and the order id is derived from it, so a redelivered or re-published signal, or a
   second replica, never places a second order (the venue answers "duplicate").
2. Not traded, with the reason: too old (POLY_SIGNAL_MAX_AGE_S), kill switch engaged, unknown
   or closed market, no book, a limit without edge, the caps (quantcore.trading.poly).
3. Under one database lock shared by all replicas: exposure is read from the venue (plus the
   worst-case cost of entries decided but not yet answered by it), the entry
   is sized from the oracle's suggestion under POLY_MARKET_CAP and POLY_RISK_CAP, the decision
   is written (order status unknown), THEN the order is placed, THEN its answer recorded. A crash
   in between is healed by the reconcile pass: the venue is asked for that order id (and the
   order placed with the same id if the venue never got it).
4. After fills, exposure is checked again: above the cap (equity fell), the largest position is
   trimmed and nothing new opens until it is back under.
Every POLY_TRADER_INTERVAL_S (the leader replica only): resolved markets are redeemed, and open
positions whose followed wallets left, whose edge decayed or whose market ends soon are sold
in steps of POLY_EXIT_STEP_PCT. Entries, exits and resolutions go to `poly.positions`
(PolyPositionChanged, vertical 'poly') and the journal.
Records: orders and trades go to the shared trade log with vertical 'poly' (see the README);
a trade closing updates the poly scanner's leaderboard row and the followed wallets' records.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.bus import Delivery
from quantcore.errors import ExternalError
from quantcore.leader import LeaderLease
from quantcore.model.events import (
    STREAM_POLY_POSITIONS,
    STREAM_POLY_SIGNALS,
    PolyPositionChanged,
    PolySignalFired,
)
from quantcore.model.trading import Side
from quantcore.scan.loop import every
from quantcore.service import Service, ServiceContext
from quantcore.store import poly_trader as store
from quantcore.store.poly_live_venue import LivePolyVenue, make_live_venue, start_live
from quantcore.store.poly_venue import PaperPolyVenue
from quantcore.store.positions import refresh_scanner_stats, write_equity
from quantcore.trading import poly as rules
from quantcore.trading.killswitch import KillSwitch
from quantcore.venues.poly import PolyHolding, PolyOrder, PolyOrderRequest

D = Decimal
LEASE_S = 15.0  # exits and redemptions run on one replica (the lease holder)
TRIM_ROUNDS = 5


def signal_key(sig: PolySignalFired) -> str:
    return f"{sig.condition_id}|{sig.token_id}|{sig.time.isoformat()}"


def order_id_of(key: str, suffix: str = "e") -> str:
    """The venue order id of a signal's entry (or its steps): the same for every replica and
    every redelivery."""
    return "pc-" + hashlib.sha256(key.encode()).hexdigest()[:32] + "-" + suffix


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


def _filled(row: dict[str, Any]) -> rules.Filled:
    return rules.Filled(shares=row["filled_qty"], avg_price=row["avg_fill_price"], fee=row["fee"])


class PolyTrader(Service):
    name: ClassVar[str] = "poly_trader"
    agent: ClassVar[str | None] = "poly_copy"
    version: ClassVar[str] = "1.1.0"
    description: ClassVar[str] = "poly signals become capped copy trades (agent poly_copy)"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        sim = s.poly_sim
        urls = PolymarketUrls.single(s.sim_http_url) if sim else PolymarketUrls()
        if s.poly_trading_mode == "live":  # the books and feeds of the CLOB we trade on
            urls = PolymarketUrls(gamma=urls.gamma, clob=s.poly_clob_url, data=s.poly_data_url)
        self.client = PolymarketClient(
            urls, source="sim" if sim else "polymarket", rate_scale=1.0 if sim else s.poly_rate_scale,
        )  # fmt: skip
        self.fees = rules.FeeSchedule(
            rate=_dec(s.poly_fee_rate_bps) / 10_000, exponent=s.poly_fee_exponent
        )
        self.venue: PaperPolyVenue | LivePolyVenue
        if s.poly_trading_mode == "live":
            self.venue = make_live_venue(s, ctx.pool, self.client, self.fees)
        else:
            self.venue = PaperPolyVenue(ctx.pool, self.client, s.poly_paper_equity_usd, self.fees)
        self.killswitch = KillSwitch(ctx.redis, s.bus_namespace)
        self.exit_policy = rules.ExitPolicy(
            step_pct=_dec(s.poly_exit_step_pct), wallets_left_share=_dec(s.poly_exit_wallets_left),
            min_edge=_dec(s.poly_exit_min_edge), resolution_hours=_dec(s.poly_exit_resolution_h),
        )  # fmt: skip
        self.lease = LeaderLease(ctx.redis, s.bus_namespace, self.name, ctx.instance, LEASE_S)
        self.status_info.update(venue=self.venue.name, decisions=0, traded=0, exits=0)

    def caps(self, equity: Decimal) -> rules.Caps:
        s = self.ctx.settings
        return rules.Caps(
            equity=equity, risk_cap=_dec(s.poly_risk_cap), market_cap=_dec(s.poly_market_cap)
        )

    # --- per signal -----------------------------------------------------------------------------

    async def on_signals(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            if isinstance(d.event, PolySignalFired):
                await self.decide(d.event)

    async def decide(self, sig: PolySignalFired) -> None:
        key = signal_key(sig)
        async with self.ctx.pool.connection() as conn:
            earlier = await store.decision_of(conn, key)
        if earlier is not None:
            if earlier["decision"] == "traded" and earlier["order_status"] is None:
                await self.reconcile_one(earlier)
            return
        reason = await self.skip_reason(sig)
        if reason is not None:
            await self.record(sig, key, "skipped", reason)
            return
        try:
            book = await self.client.book(sig.token_id)
        except ExternalError as exc:
            await self.record(sig, key, "skipped", f"no_book: {exc}")
            return
        tick = _dec(book.tick_size) if book.tick_size is not None else rules.DEFAULT_TICK
        min_size = _dec(book.min_order_size) if book.min_order_size is not None else D(0)
        try:
            market_rules = rules.MarketRules(tick=tick, min_size=min_size, fees=self.fees)
            limit = rules.sell_limit(rules.check_price(_dec(sig.market_price)), market_rules)
            if limit >= _dec(sig.implied_prob):
                raise rules.RuleError(
                    "no_edge_at_limit", f"limit {limit} ≥ implied {sig.implied_prob}"
                )
        except rules.RuleError as err:
            await self.record(sig, key, "refused", str(err))
            return
        oid = order_id_of(key)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await store.lock_caps(conn)  # one exposure decision at a time across replicas
            if await store.decision_of(conn, key) is not None:
                return  # another replica decided it while we read the book
            eq = await self.venue.equity()
            pending = await store.reserved(conn)  # decided, not yet answered by the venue
            market_exposure = pending.get(sig.condition_id, D(0)) + sum(
                (h.cost for h in await self.venue.holdings() if h.condition_id == sig.condition_id),
                D(0),
            )
            total = eq.exposure + sum(pending.values(), D(0))
            try:
                entry = rules.size_entry(
                    _dec(sig.suggested_size_usd), limit, market_rules,
                    rules.Exposure(total=total, market=market_exposure), self.caps(eq.equity),
                )  # fmt: skip
            except rules.RuleError as err:
                await self.record(sig, key, "refused", str(err), conn=conn)
                return
            await self.record(
                sig, key, "traded", None, conn=conn, order_id=oid, limit_price=entry.limit,
                shares=entry.shares, cost_usd=entry.cost,
            )  # fmt: skip
            # the trade log's rows (trade pending, order submitting) commit with the decision
            await store.record_entry_intent(conn, store.EntryIntent(
                signal_key=key, condition_id=sig.condition_id, token_id=sig.token_id,
                order_id=oid, limit=entry.limit, shares=entry.shares,
                wallets=await store.signal_wallets(conn, sig.condition_id, sig.token_id, sig.time),
                scanner=sig.scanner, scanner_version=sig.scanner_version,
                question=sig.question, outcome=sig.outcome, agent=self.ctx.agent,
                agent_version=self.version, venue=self.venue.name,
            ))  # fmt: skip
            # the decision commits before the order is placed: a crash leaves it for reconcile
        req = PolyOrderRequest(
            oid, sig.condition_id, sig.token_id, Side.BUY, entry.limit, entry.shares, tick, key
        )
        order = await self.venue.place_order(req)
        if self.ctx.settings.poly_trader_fault == "kill_after_place" and not order.duplicate:
            os.kill(
                os.getpid(), signal.SIGKILL
            )  # testing hook: die between the venue and our write
        await self.settled(key, order, sig.question, sig.outcome)

    async def skip_reason(self, sig: PolySignalFired) -> str | None:
        age = datetime.now(UTC) - sig.time
        if age > timedelta(seconds=self.ctx.settings.poly_signal_max_age_s):
            return f"expired: signal is {age.total_seconds():.0f}s old"
        ks = await self.killswitch.state()
        if ks.active:
            return f"kill_switch: {ks.reason}"
        async with self.ctx.pool.connection() as conn:
            market = await store.market_state(conn, sig.condition_id)
        if market is None:
            return "unknown_market: not in poly_markets"
        if market.closed:
            return "market_closed: the market is closed or resolved"
        if sig.token_id not in market.token_ids:
            return "unknown_token: not an outcome of this market"
        return None

    async def record(
        self,
        sig: PolySignalFired,
        key: str,
        decision: str,
        reason: str | None,
        conn: Any = None,
        **extra: Any,
    ) -> None:
        row = dict(
            signal_key=key, signal_time=sig.time, condition_id=sig.condition_id,
            token_id=sig.token_id, outcome=sig.outcome, question=sig.question, decision=decision,
            reason=reason, suggested_usd=_dec(sig.suggested_size_usd),
            implied_prob=sig.implied_prob, edge=sig.edge, smart_wallets=sig.smart_wallets,
            agent=self.ctx.agent, venue=self.venue.name, **extra,
        )  # fmt: skip
        if conn is None:
            async with self.ctx.pool.connection() as c:
                await store.record_decision(c, **row)
        else:
            await store.record_decision(conn, **row)
        self.status_info["decisions"] = self.status_info.get("decisions", 0) + 1
        if decision != "traded":
            self.log.info("poly signal not traded", signal=key, decision=decision, reason=reason)
            await self.ctx.journal("poly_copy_" + decision, f"{sig.question} {sig.outcome}: {reason}",
                                   vertical="poly", signal=key)  # fmt: skip

    async def settled(
        self, key: str, order: PolyOrder, question: str | None, outcome: str | None
    ) -> None:
        cost = (order.avg_price or D(0)) * order.filled + order.fee
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await store.settle_decision(
                conn, key, order.status.value, order.filled, cost, order.reason
            )
            trade_id = await store.trade_of_order(conn, order.order_id)
            await store.record_order(conn, order, venue=self.venue.name, agent=self.ctx.agent,
                                     trade_id=trade_id, signal_key=key)  # fmt: skip
            if trade_id is not None:
                await self.refresh_entry(conn, trade_id)
        if order.filled <= 0:
            await self.ctx.journal("poly_copy_unfilled", f"{order.order_id}: {order.status} {order.reason}",
                                   vertical="poly", signal=key)  # fmt: skip
            return
        self.status_info["traded"] = self.status_info.get("traded", 0) + 1
        held = {h.token_id: h for h in await self.venue.holdings()}.get(order.token_id)
        await self.ctx.bus.publish(STREAM_POLY_POSITIONS, PolyPositionChanged(
            kind="entry", time=datetime.now(UTC), agent=self.ctx.agent, venue=self.venue.name,
            condition_id=order.condition_id, token_id=order.token_id, question=question,
            outcome=outcome, order_id=order.order_id, signal_key=key, shares=float(order.filled),
            price=float(order.avg_price) if order.avg_price is not None else None,
            held_after=float(held.shares) if held else 0.0, cost_usd=float(cost),
        ))  # fmt: skip
        await self.ctx.journal("poly_copy_entry", f"{question} {outcome}: bought {order.filled} "
                               f"at {order.avg_price}", vertical="poly", signal=key)  # fmt: skip
        await self.check_cap()

    # --- the trade log (orders / trades, vertical 'poly') -----------------------------------------

    async def refresh_entry(self, conn: Any, trade_id: Any) -> None:
        """The trade's entry from its buys as the venue answered them."""
        buys = await store.trade_fills(conn, trade_id, "buy")
        rec = rules.entry_record([_filled(r) for r in buys])
        first = next((r["created_at"] for r in buys if r["filled_qty"] > 0), None)
        pending = await store.has_unanswered_buys(conn, trade_id)
        await store.update_trade_entry(
            conn, trade_id, shares=rec.shares, avg_price=rec.avg_price, cost=rec.cost,
            fees=rec.fees, opened_at=first, cancelled=rec.shares == 0 and not pending,
        )  # fmt: skip

    async def close_trade(self, conn: Any, trade_id: Any) -> None:
        """The position is flat: close its trade from its entry and its steps (PnL and PnL % by
        the one formula), then learn from the outcome: the poly scanner's leaderboard row and
        the followed wallets' copy records."""
        entry = rules.entry_record(
            [_filled(r) for r in await store.trade_fills(conn, trade_id, "buy")]
        )
        sells = await store.trade_fills(conn, trade_id, "sell")
        steps = [
            rules.StepOut(shares=r["shares"], price=r["price"], pnl=r["pnl_usd"],
                          reason=rules.RESOLVED if r["kind"] == "resolution" else r["reason"])
            for r in await store.trade_steps(conn, trade_id)
        ]  # fmt: skip
        if not steps:
            return
        rec = rules.close_record(entry, steps)
        closed = await store.close_trade(
            conn, trade_id, exit_price=rec.exit_price, reason=rec.reason, pnl_usd=rec.pnl_usd,
            pnl_pct_price=rec.pnl_pct_price, pnl_pct_margin=rec.pnl_pct_margin,
            fees=entry.fees + sum((r["fee"] for r in sells), D(0)), at=datetime.now(UTC),
        )  # fmt: skip
        if closed is None:
            return  # closed already (a replayed step)
        if closed["scanner"] and closed["scanner_version"]:
            await refresh_scanner_stats(conn, closed["scanner"], closed["scanner_version"],
                                        closed["venue"])  # fmt: skip
        await store.refresh_wallet_copy_stats(
            conn, closed["followed_wallets"] or [], closed["venue"]
        )
        self.log.info("poly copy trade closed", trade_id=str(trade_id), reason=rec.reason,
                      pnl_usd=str(rec.pnl_usd), pnl_pct=rec.pnl_pct_margin)  # fmt: skip

    async def snapshot_equity(self) -> None:
        """Poly equity (cash + open positions at cost) next to the perps snapshots, agent
        poly_copy, vertical 'poly': the Trading dashboard's perps / poly / combined PnL."""
        eq = await self.venue.equity()
        held = await self.venue.holdings()
        async with self.ctx.pool.connection() as conn:
            await write_equity(
                conn, at=datetime.now(UTC), venue=self.venue.name, agent=self.ctx.agent,
                equity=eq.equity, balance=eq.cash, unrealised=None, start_equity=eq.start,
                open_positions=len(held), vertical="poly",
            )  # fmt: skip

    # --- reconcile, cap, exits, resolution ------------------------------------------------------

    async def reconcile_one(self, row: dict[str, Any]) -> None:
        order = await self.venue.get_order(row["order_id"])
        if order is None:  # the crash came before the venue got it: place it now, same id
            book = await self.client.book(row["token_id"])
            tick = _dec(book.tick_size) if book.tick_size is not None else rules.DEFAULT_TICK
            order = await self.venue.place_order(PolyOrderRequest(
                row["order_id"], row["condition_id"], row["token_id"], Side.BUY,
                row["limit_price"], row["shares"], tick, row["signal_key"],
            ))  # fmt: skip
        await self.settled(row["signal_key"], order, row["question"], row["outcome"])
        self.log.info("reconciled poly order with the venue", order_id=row["order_id"])

    async def reconcile(self, _cycle: int = 0) -> None:
        async with self.ctx.pool.connection() as conn:
            rows = await store.unsettled(conn)
        for row in rows:
            if datetime.now(UTC) - row["created_at"] > timedelta(seconds=5) or _cycle == 0:
                await self.reconcile_one(row)

    async def check_cap(self) -> None:
        """Re-check after fills: above the total cap (equity fell), trim the largest position —
        again while still above, since selling into the bid realises the spread and the fee and
        so lowers the equity the cap is a share of (a few rounds at most)."""
        for _ in range(TRIM_ROUNDS):
            eq = await self.venue.equity()
            caps = self.caps(eq.equity)
            async with self.ctx.pool.connection() as conn:
                await store.record_exposure(
                    conn, at=datetime.now(UTC), venue=self.venue.name, agent=self.ctx.agent,
                    equity=eq.equity, exposure=eq.exposure, cap=caps.total_limit,
                    open_positions=len(await self.venue.holdings()),
                )  # fmt: skip
            excess = rules.excess_after_fills(eq.exposure, caps)
            if excess <= 0:
                return
            self.log.warning(
                "poly exposure above the cap", exposure=str(eq.exposure), excess=str(excess)
            )
            holdings = await self.venue.holdings()
            if not holdings:
                return
            largest = max(holdings, key=lambda h: h.cost)
            per_share = largest.cost / largest.shares
            shares = min(largest.shares, rules.floor_shares(excess / per_share + rules.SHARE_STEP))
            if not await self.step_out(largest, shares, rules.ExitReason.OVER_CAP.value):
                return  # no bids or not filled: the next pass tries again

    async def step_out(self, held: PolyHolding, shares: Decimal, reason: str) -> bool:
        """Sell `shares` of a holding into the bids (FAK); True when something filled."""
        try:
            book = await self.client.book(held.token_id)
        except ExternalError as exc:
            self.log.warning("no book to exit on", token=held.token_id, error=str(exc))
            return False
        if not book.bids:
            self.log.info("no bids to exit into", token=held.token_id)
            return False
        async with self.ctx.pool.connection() as conn:
            state = await store.market_state(conn, held.condition_id)
            dec = await store.followed(conn, held.token_id)
            trade = await store.open_trade(conn, self.venue.name, held.token_id)
            if trade is not None:  # every exit order of the trade counts, filled or not
                n = await store.sell_orders_of(conn, trade["trade_id"])
            else:
                since = dec["created_at"] if dec else datetime(2000, 1, 1, tzinfo=UTC)
                n = await store.steps_taken(conn, held.token_id, since)
        base = dec["signal_key"] if dec else held.token_id
        trade_id = trade["trade_id"] if trade else None
        tick = _dec(book.tick_size) if book.tick_size is not None else rules.DEFAULT_TICK
        min_size = _dec(book.min_order_size) if book.min_order_size is not None else D(0)
        if shares < min_size or held.shares - shares < min_size:
            shares = min(held.shares, max(shares, min_size))  # the CLOB minimum, or all the rest
            if held.shares - shares < min_size:
                shares = held.shares
        oid = order_id_of(base, f"x{n + 1}")
        order = await self.venue.place_order(
            PolyOrderRequest(
                oid,
                held.condition_id,
                held.token_id,
                Side.SELL,
                tick,
                shares,
                tick,
                base,
            )
        )  # fmt: skip  (a sell limited at one tick: FAK takes the bids as they are)
        async with self.ctx.pool.connection() as conn:
            await store.record_order(
                conn, order, venue=self.venue.name, agent=self.ctx.agent, trade_id=trade_id,
                signal_key=trade["signal_key"] if trade else None,
            )  # fmt: skip
        if order.filled <= 0:
            self.log.info("exit step not filled", order_id=oid, reason=order.reason)
            return False
        cost_out = held.cost * order.filled / held.shares
        proceeds = (order.avg_price or D(0)) * order.filled - order.fee
        pnl = proceeds - cost_out
        pct = rules.pnl_pct(pnl, cost_out, order.filled)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await store.record_step(
                conn, order_id=oid, condition_id=held.condition_id, token_id=held.token_id,
                kind="exit", reason=reason, shares=order.filled, price=order.avg_price,
                cost_usd=cost_out, pnl_usd=pnl, pnl_pct=pct, agent=self.ctx.agent,
                venue=self.venue.name, time=datetime.now(UTC), trade_id=trade_id,
            )  # fmt: skip
            if trade_id is not None and held.shares - order.filled <= 0:
                await self.close_trade(conn, trade_id)
        self.status_info["exits"] = self.status_info.get("exits", 0) + 1
        await self.ctx.bus.publish(STREAM_POLY_POSITIONS, PolyPositionChanged(
            kind="exit", time=datetime.now(UTC), agent=self.ctx.agent, venue=self.venue.name,
            condition_id=held.condition_id, token_id=held.token_id,
            question=state.question if state else None,
            outcome=state.outcome_of(held.token_id) if state else None, order_id=oid,
            signal_key=base, shares=float(order.filled),
            price=float(order.avg_price) if order.avg_price is not None else None,
            held_after=float(held.shares - order.filled), cost_usd=float(cost_out),
            pnl_usd=float(pnl), pnl_pct=pct, reason=reason,
        ))  # fmt: skip
        await self.ctx.journal("poly_copy_exit", f"sold {order.filled} of {held.token_id}: {reason}",
                               vertical="poly", order_id=oid)  # fmt: skip
        return True

    async def manage(self, _cycle: int = 0) -> None:
        """One pass over open positions: redeem resolved markets, step out where a reason holds."""
        if not self.lease.held:
            return
        await self.reconcile(1)
        now = datetime.now(UTC)
        for held in await self.venue.holdings():
            async with self.ctx.pool.connection() as conn:
                state = await store.market_state(conn, held.condition_id)
                dec = await store.followed(conn, held.token_id)
                wallets = list(dec["wallets"]) if dec else []
                holding = (
                    await store.wallets_holding(conn, held.token_id, wallets) if wallets else 0
                )
            if state is not None and state.closed:
                if state.winner_token is not None:
                    await self.redeem(state)
                continue
            edge = None
            if dec is not None and dec["implied_prob"] is not None:
                try:
                    book = await self.client.book(held.token_id)
                    if book.best_bid is not None:
                        edge = _dec(dec["implied_prob"]) - _dec(book.best_bid)
                except ExternalError:
                    edge = None
            reason = rules.exit_reason(
                self.exit_policy, wallets_followed=len(wallets), wallets_holding=holding, edge=edge,
                end_date=state.end_date if state else None, now=now,
            )  # fmt: skip
            if reason is None:
                continue
            shares = rules.exit_step(held.shares, held.entry_shares, self.exit_policy,
                                     rules.MarketRules(min_size=D(0)))  # fmt: skip
            await self.step_out(held, shares, reason.value)
        await self.check_cap()
        await self.snapshot_equity()

    async def redeem(self, state: store.MarketState) -> None:
        winner = state.winner_token
        assert winner is not None
        before = {
            h.token_id: h
            for h in await self.venue.holdings()
            if h.condition_id == state.condition_id
        }
        for after in await self.venue.resolve(state.condition_id, winner):
            held = before.get(after.token_id)
            if held is None:
                continue
            payout = held.shares if after.token_id == winner else D(0)
            pnl = payout - held.cost
            pct = rules.pnl_pct(pnl, held.cost, held.shares)
            oid = order_id_of(state.condition_id + "|" + after.token_id, "r")
            async with self.ctx.pool.connection() as conn, conn.transaction():
                trade = await store.open_trade(conn, self.venue.name, after.token_id)
                await store.record_step(
                    conn, order_id=oid, condition_id=state.condition_id, token_id=after.token_id,
                    kind="resolution", reason=f"resolved: {state.resolved_outcome}",
                    shares=held.shares, price=D(1) if payout else D(0), cost_usd=held.cost,
                    pnl_usd=pnl, pnl_pct=pct, agent=self.ctx.agent, venue=self.venue.name,
                    time=datetime.now(UTC), trade_id=trade["trade_id"] if trade else None,
                )  # fmt: skip
                if trade is not None:
                    await self.close_trade(conn, trade["trade_id"])
            signal_of = trade["signal_key"] if trade else None
            await self.ctx.bus.publish(STREAM_POLY_POSITIONS, PolyPositionChanged(
                kind="resolution", time=datetime.now(UTC), agent=self.ctx.agent,
                venue=self.venue.name, condition_id=state.condition_id, token_id=after.token_id,
                question=state.question, outcome=state.outcome_of(after.token_id), order_id=oid,
                signal_key=signal_of, shares=float(held.shares), price=1.0 if payout else 0.0,
                held_after=0.0, cost_usd=float(held.cost), pnl_usd=float(pnl), pnl_pct=pct,
                reason=f"resolved: {state.resolved_outcome}",
            ))  # fmt: skip
            await self.ctx.journal("poly_copy_resolution", f"{state.question}: {state.resolved_outcome}, "
                                   f"pnl {pnl:.2f}", vertical="poly", order_id=oid)  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        signals = self.ctx.bus.consumer(
            STREAM_POLY_SIGNALS, group=self.name, name=self.ctx.instance, handler=self.on_signals,
            batch_size=20, claim_idle_ms=s.bus_claim_idle_ms, max_deliveries=s.bus_max_deliveries,
        )  # fmt: skip
        if isinstance(self.venue, LivePolyVenue):
            await start_live(self.venue, s.poly_geoblock_url, self.log)  # refuses when blocked
        self.status = "ok"
        try:
            await self.reconcile(0)  # orders a crash left unanswered, before anything new
            tasks = [signals.run(stop), self.lease.run(stop, self._lead)]
            if isinstance(self.venue, LivePolyVenue) and s.poly_heartbeat_s > 0:
                tasks.append(every(s.poly_heartbeat_s, stop, self.heartbeat, self.log, "heartbeat",
                                   delay_s=0))  # fmt: skip
            await asyncio.gather(*tasks)
        finally:
            await self.venue.close()
            await self.client.aclose()

    async def heartbeat(self, _cycle: int = 0) -> None:
        """Live: the CLOB's dead-man switch (open orders are cancelled if heartbeats stop)."""
        assert isinstance(self.venue, LivePolyVenue)
        await self.venue.clob.heartbeat()
        self.status_info["heartbeats"] = self.status_info.get("heartbeats", 0) + 1

    async def _lead(self, lost: asyncio.Event) -> None:
        await every(self.ctx.settings.poly_trader_interval_s, lost, self.manage, self.log, "manage",
                    delay_s=0)  # fmt: skip
