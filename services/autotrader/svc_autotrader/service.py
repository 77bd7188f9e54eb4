"""Autotrader (agent `liquidation_hunter`): trade signals → orders at the venue, exactly once.

Per signal (consumer group `autotrader`: replicas share the stream, each signal goes to one):
1. A signal already decided is not decided again (`autotrader_decisions`, key signal_id); a
   'traded' decision whose orders never reached the venue is resumed (crash recovery).
2. Expired (older than SIGNAL_MAX_AGE_S), a major (TRADE_MAJORS) or the kill switch →
   not traded, with the reason.
3. The decision (quantcore.trading.decision.decide — the same function the ranker planned the
   signal with) is made again with the venue's equity and instrument grid, on the market view
   the signal carries. When that view is older than HEATMAP_MAX_AGE_S, a pre-trade refresh is
   requested and its `heatmap.refreshed` event awaited on the bus (PRE_TRADE_REFRESH_WAIT_S at
   most), the coin's levels are read again and the decision is made on the fresh view: the
   new plan is traded, or the signal is dropped with the reason (target gone, plan refused).
4. Risk guards under one database lock shared by all replicas (quantcore.trading.risk): the
   kill switch, daily loss limit, one position per coin, max open positions, margin caps.
5. The trade (status 'pending') and its orders (status 'submitting') are written, THEN placed at
   the venue with order_link_id = signal id (+ rung), THEN brought to the venue's state. A crash
   between the venue's accept and our write is healed by the redelivered signal or the
   reconciler: placing the same order_link_id again answers "already placed" (110072) and the
   order is looked up — never a second order.
Fills, stops and closes are the position monitor's job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from quantcore.adapters.bybit.execution import make_bybit_client
from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.bus import Delivery
from quantcore.errors import ExternalError
from quantcore.logging import correlation
from quantcore.model.events import (
    STREAM_HEATMAPS_REFRESHED,
    STREAM_REFRESH_REQUESTS,
    STREAM_SIGNALS,
    HeatmapRefreshRequested,
    HeatmapsRefreshed,
    StrategySignalled,
    TradeSignalled,
)
from quantcore.model.plan import (
    AccountState,
    InstrumentRules,
    MarketView,
    PriceRange,
    Refusal,
    TradePlan,
)
from quantcore.model.trading import Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from quantcore.scan import ranking
from quantcore.scan.loop import every
from quantcore.scan.rank_inputs import read_rank_inputs
from quantcore.service import Service, ServiceContext
from quantcore.store import trades as store
from quantcore.store.paper_venue import PaperBooks
from quantcore.trading import plugin, risk
from quantcore.trading.decision import DecisionSettings, decide
from quantcore.trading.guard import enforce_daily_loss
from quantcore.trading.killswitch import KillSwitch, KillSwitchState
from quantcore.venues.factory import make_venue
from quantcore.venues.instruments import InstrumentGrid

RISK_LOCK = 0x5EA1_7AD3  # pg advisory lock: one entry decision at a time across replicas
RECONCILE_EVERY_S = 30.0
EQUITY_REFRESH_S = 0.5  # the venue's equity is read in the background this often
EQUITY_MAX_AGE_S = 2.0  # a signal sizes on equity at most this old, else reads it itself
CONCURRENT_DECISIONS = 8


class Autotrader(Service):
    name: ClassVar[str] = "autotrader"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "trade signals become orders at the venue (agent liquidation_hunter)"
    )

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.agent_name = s.autotrader_agent
        # one Bybit client for the process: market data and the venue share its bucket
        self.market = BybitMarketData(
            s.bybit_rest_url, s.bybit_rate_per_s, http=make_bybit_client(s)
        )
        self.venue = make_venue(s, PaperBooks(ctx.pool, s.paper_start_equity), self.market)
        self.killswitch = KillSwitch(ctx.redis, s.bus_namespace)
        self.grid = InstrumentGrid(self.market)  # the venue's price and qty grid
        self.decision = DecisionSettings.from_settings(s)
        self.rank_params = ranking.RankParams.from_settings(s)
        if "AUTOTRADER_ENTRY_MODE" in os.environ and "ENTRY_MODE" not in os.environ:
            self.log.warning("AUTOTRADER_ENTRY_MODE is deprecated: it is read as ENTRY_MODE, the "
                             "one entry mode of signals and orders", entry_mode=s.entry_mode)  # fmt: skip
        self.limits = risk.RiskLimits(
            max_open_positions=s.max_open_positions, max_trade_equity_pct=s.max_trade_equity_pct,
            max_total_equity_pct=s.max_total_equity_pct, daily_loss_limit_pct=s.daily_loss_limit_pct,
        )  # fmt: skip
        self.gate = asyncio.Semaphore(CONCURRENT_DECISIONS)
        self.leverage_set: set[str] = set()
        self.equity_value: float | None = None
        self.unrealised_value = 0.0  # of the open positions, with equity_value
        self.equity_at: float | None = None
        self.status_info.update(venue=self.venue.name, decisions=0, traded=0)

    # --- per signal -----------------------------------------------------------------------------------

    async def on_signals(self, deliveries: list[Delivery]) -> None:
        """A batch is decided concurrently (waits on the venue and the database overlap); the
        shared risk lock and the per-signal decision key keep the outcome the same as in turn."""
        signals = [d for d in deliveries if isinstance(d.event, TradeSignalled)]
        # a plug-in's signals in turn, in stream order: a reversal reads the position the
        # previous one left
        plugin_signals = [d for d in deliveries if isinstance(d.event, StrategySignalled)]
        results = await asyncio.gather(
            *(self._decide_limited(d.event, d.envelope.correlation_id) for d in signals),  # type: ignore[arg-type]
            self._decide_plugins(plugin_signals),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]  # the bus redelivers the batch; decided signals are not decided again

    async def _decide_plugins(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            assert isinstance(d.event, StrategySignalled)
            with correlation(d.envelope.correlation_id):
                await self.decide_plugin(d.event, d.envelope.correlation_id)

    async def _decide_limited(self, sig: TradeSignalled, correlation_id: str) -> None:
        async with self.gate:
            with correlation(correlation_id):  # each signal of a batch keeps its own id
                await self.decide(sig, correlation_id)

    async def decide(self, sig: TradeSignalled, correlation_id: str = "") -> None:
        # the kill switch is read from Redis while the decision goes on: on the way to an order
        # it is awaited under the risk lock (commit_plan), where the risk guards refuse with it
        ks_task = asyncio.ensure_future(self.killswitch.state())
        try:
            await self._decide(sig, correlation_id, ks_task)
        finally:
            if not ks_task.done():
                ks_task.cancel()
            elif not ks_task.cancelled():
                ks_task.exception()  # a way out that never needed it: nothing left unretrieved

    async def _decide(
        self, sig: TradeSignalled, correlation_id: str, ks_task: asyncio.Future[KillSwitchState]
    ) -> None:
        # A signal decided before (redelivered) is not decided again. On the way to an order
        # that is checked under the risk lock, in the round trip that reads the exposure
        # (commit_plan); every other way out (skip, refresh, refusal) checks it first.
        # The reasons rank: expired, a major, the kill switch, then the refresh and the plan.
        view = sig.market or view_of(sig)
        refreshed = False
        skip = self.skip_reason(sig)
        if skip is None and await self.stale(view):
            skip = await self.kill_switch_reason(ks_task)  # before waiting on a refresh
            if skip is None:
                if await self.decided_before(sig.signal_id):
                    return
                fresh = await self.refreshed_view(sig)
                if isinstance(fresh, Refusal):
                    await self.record(sig, "skipped", f"{fresh.code}: {fresh.reason}",
                                      {"market": view.model_dump(mode="json")})  # fmt: skip
                    return
                view, refreshed = fresh, True
        if skip is not None:
            await self.not_traded(sig, skip)
            return
        try:
            equity = await self.account_equity()
            rules = await self.instrument(sig.symbol)
        except (ExternalError, LookupError) as exc:
            ks = await self.kill_switch_reason(ks_task)
            await self.not_traded(sig, ks or ("skipped", f"cannot plan: {exc}"))
            return
        plan = decide(view, self.decision, AccountState(equity=equity), rules)
        if isinstance(plan, Refusal):
            ks = await self.kill_switch_reason(ks_task)
            await self.not_traded(sig, ks or ("refused", f"{plan.code}: {plan.reason}"), {
                "market": view.model_dump(mode="json"), "refreshed": refreshed})  # fmt: skip
            return
        trade_id = await self.commit_plan(
            sig, plan, view, equity, ks_task, correlation_id, refreshed
        )
        if trade_id is None:
            return
        # the rows just committed are the requests: placed without reading them back
        await self.place(sig.signal_id, self.requests(sig, plan))
        await self.ctx.journal(
            "entry_planned", f"{sig.direction} {sig.symbol}: {len(plan.orders)} order(s), "
            f"qty {plan.qty}, SL {plan.stop_loss}, TP {plan.take_profit}", symbol=sig.symbol,
            vertical="perps", signal_id=str(sig.signal_id), trade_id=str(trade_id),
        )  # fmt: skip

    # --- strategy plug-ins (signal.strategy) -----------------------------------------------------

    async def decide_plugin(self, sig: StrategySignalled, correlation_id: str = "") -> None:
        """A plug-in's signal, traded the way the backtester trades it (quantcore.trading.plugin):
        a market entry; the side already held is kept; the opposite side is a reversal (a
        reduce-only market close, then the entry, in one call to the venue); stop and target
        set from the fill. Only plug-ins named in AUTOTRADE_STRATEGIES are traded."""
        decided, ks = await asyncio.gather(
            self.decided_before(sig.signal_id), self.killswitch.state()
        )
        if decided:  # redelivered: a 'traded' one had its unplaced orders placed
            return
        reason = self.skip_reason(sig) or self.kill_switch_refusal(ks)
        if reason is None and sig.strategy not in self.ctx.settings.autotraded_strategies:
            reason = (
                "skipped",
                f"{sig.strategy} is not in AUTOTRADE_STRATEGIES: recorded, not traded",
            )
        if reason is not None:
            await self.record(sig, reason[0], reason[1])
            return
        side = 1 if sig.direction == "long" else -1
        try:
            equity = await self.account_equity()
            rules = await self.instrument(sig.symbol)
            held = await self.venue.positions(sig.symbol)
        except (ExternalError, LookupError) as exc:
            await self.record(sig, "skipped", f"cannot trade: {exc}")
            return
        pos = next((p for p in held if p.size > 0), None)
        held_side = 0 if pos is None else (1 if pos.side is Side.BUY else -1)
        relation = plugin.held_relation(held_side, side)
        if relation == "same":
            await self.record(sig, "skipped", f"already {sig.direction} on {sig.symbol}: the "
                              "position held is kept (a repeated entry is ignored, as in the backtest)")  # fmt: skip
            return
        s = self.ctx.settings
        qty = plugin.market_qty(equity, sig.price, s.trade_leverage, s.max_trade_equity_pct,
                                rules.qty_step)  # fmt: skip
        if qty <= 0 or qty < Decimal(str(rules.min_qty)):
            await self.record(sig, "refused", f"size_zero: {qty} below the minimum {rules.min_qty}")
            return
        order_side = Side.BUY if side > 0 else Side.SELL
        requests = []
        if relation == "opposite" and pos is not None:
            requests.append(OrderRequest(
                plugin.close_link_id(sig.signal_id), sig.symbol, order_side, OrderType.MARKET, pos.size,
                reduce_only=True, fill_from=sig.time,
            ))  # fmt: skip
        # decided at the bar's close: the paper venue fills at the next bar's open (the
        # backtester's rule), a real venue at its market
        entry = OrderRequest(
            store.order_link_id_for(sig.signal_id), sig.symbol, order_side, OrderType.MARKET, qty,
            fill_from=sig.time,
        )  # fmt: skip
        requests.append(entry)
        margin = float(qty) * sig.price / s.trade_leverage
        trade_id = await self.commit_plugin(sig, requests, margin, equity, ks, correlation_id,
                                            reversing=relation == "opposite")  # fmt: skip
        if trade_id is None:
            return
        await self.send(requests)
        await self.plugin_levels(sig, trade_id, entry.order_link_id, side, rules.tick_size)
        await self.ctx.journal(
            "entry_planned", f"{sig.strategy}: {sig.direction} {sig.symbol} at market, qty {qty}"
            + (" (reversal)" if relation == "opposite" else ""), symbol=sig.symbol,
            vertical="perps", signal_id=str(sig.signal_id), trade_id=str(trade_id),
        )  # fmt: skip

    async def commit_plugin(
        self, sig: StrategySignalled, requests: list[OrderRequest], margin: float, equity: float,
        ks: KillSwitchState, correlation_id: str, reversing: bool,
    ) -> uuid.UUID | None:  # fmt: skip
        """Risk guards and the trade + order rows under the shared lock (a reversal's own coin
        and margin do not count: the close goes first in the same venue call)."""
        venue = self.venue.name
        trade_id = store.trade_id_for(sig.signal_id)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (RISK_LOCK,))
            exp = await store.exposure_unless_decided(conn, sig.signal_id, venue, self.day_start())
            if isinstance(exp, str):  # decided meanwhile (a replica): its decision stands
                return None
            open_symbols, used = exp.open_symbols, exp.used_margin
            detail: dict[str, Any] = {"strategy": sig.strategy, "reversal": reversing}
            held = await store.held_trade(conn, venue, sig.symbol)
            if reversing:
                if held is None or held.scanner != sig.scanner:  # never close what is not ours
                    owner = "a position without a trade of ours" if held is None else (
                        held.scanner or "a manual trade")  # fmt: skip
                    await self._record(conn, sig, "refused", f"{sig.symbol} is held by {owner}, "
                                       f"not {sig.scanner}: no reversal", None, detail)  # fmt: skip
                    return None
                open_symbols = open_symbols - {sig.symbol}
                used -= held.margin
            elif (held is not None and held.status == "open" and held.scanner == sig.scanner
                  and held.direction != sig.direction):  # fmt: skip
                # the venue closed our open trade's position (its stop or target, between two of
                # the position monitor's passes): the row is about to close, it holds nothing —
                # the backtest, too, opens again at the close of the bar a stop fired in. Only
                # for the other side: the monitor tells the two apart by direction.
                open_symbols = open_symbols - {sig.symbol}
                used -= held.margin
                detail["closed_by_venue"] = str(held.trade_id)
            state = risk.RiskState(
                equity=equity, open_symbols=open_symbols, used_margin=used,
                realised_today=exp.realised_today, kill_switch=ks.reason if ks.active else None,
                unrealised=self.unrealised_value,
            )  # fmt: skip
            refusal = risk.refusal(state, self.limits, sig.symbol, margin)
            if refusal is not None:
                await self._record(conn, sig, "refused", refusal, None, detail)
                return None
            entry = requests[-1]
            await store.insert_pending_trade(conn, {
                "trade_id": trade_id, "signal_id": sig.signal_id, "agent": self.agent_name,
                "agent_version": self.version, "scanner": sig.scanner,
                "scanner_version": sig.scanner_version, "source": "auto", "venue": venue,
                "symbol": sig.symbol, "direction": sig.direction,
                "leverage": Decimal(str(self.ctx.settings.trade_leverage)), "qty": entry.qty,
                "margin": Decimal(str(round(margin, 8))), "status": "pending",
                "correlation_id": correlation_id or None,
                "metadata": {"strategy": sig.strategy, "strategy_version": sig.strategy_version,
                             "reversal": reversing},
            })  # fmt: skip
            await store.insert_created_orders(conn, [
                (r.order_link_id, venue, sig.signal_id, trade_id, r.symbol, r.side, r.order_type,
                 r.qty, None, TimeInForce.GTC, r.reduce_only, None, None, None,
                 OrderStatus.SUBMITTING, self.agent_name)
                for r in requests
            ])  # fmt: skip
            await self._record(conn, sig, "traded", None, trade_id, detail)
        return trade_id

    async def plugin_levels(
        self, sig: StrategySignalled, trade_id: uuid.UUID, link: str, side: int, tick: float
    ) -> None:
        """Stop and target from the entry's fill price on the tick grid (plugin.venue_levels)."""
        if sig.stop_loss_pct is None and sig.take_profit_pct is None:
            return
        order = await self.venue.get_order(sig.symbol, link)
        if order is None or order.avg_fill_price is None:
            self.log.warning(
                "entry not filled yet: no stop / target set", signal_id=str(sig.signal_id)
            )
            return
        d_sl, d_tp = plugin.venue_levels(side, float(order.avg_fill_price), sig.stop_loss_pct,
                                         sig.take_profit_pct, tick)  # fmt: skip
        await self.venue.set_trading_stop(sig.symbol, stop_loss=d_sl, take_profit=d_tp)
        async with self.ctx.pool.connection() as conn:
            await store.set_trade_levels(conn, trade_id, d_sl, d_tp)

    async def account_equity(self) -> float:
        """The venue's equity, refreshed every EQUITY_REFRESH_S in the background (a signal
        never waits for it unless it is older than EQUITY_MAX_AGE_S)."""
        if self.equity_at is None or time.monotonic() - self.equity_at > EQUITY_MAX_AGE_S:
            await self.equity_pass(0)
        assert self.equity_value is not None
        return self.equity_value

    async def equity_pass(self, _cycle: int) -> None:
        account = await self.venue.equity()
        self.equity_value = float(account.equity)
        self.unrealised_value = float(account.unrealised_pnl)  # the daily loss limit counts it
        self.equity_at = time.monotonic()

    def requests(self, sig: TradeSignalled, plan: TradePlan) -> list[OrderRequest]:
        side = Side.BUY if plan.direction == "long" else Side.SELL
        return [
            OrderRequest(
                store.order_link_id_for(sig.signal_id, o.ladder_index), sig.symbol, side,
                OrderType.LIMIT, o.qty or Decimal(0), o.price, TimeInForce.GTC, False,
                plan.stop_loss, plan.take_profit,
            )
            for o in plan.orders
        ]  # fmt: skip

    async def decided_before(self, signal_id: uuid.UUID) -> bool:
        """The signal has a decision already; a 'traded' one has its unplaced orders placed
        (a crash may have left them)."""
        async with self.ctx.pool.connection() as conn:
            earlier = await store.decision_of(conn, signal_id)
        if earlier is None:
            return False
        if earlier["decision"] == "traded":
            await self.resume(signal_id)
        return True

    async def not_traded(
        self, sig: TradeSignalled, why: tuple[str, str], detail: dict[str, Any] | None = None
    ) -> None:
        """Record why the signal is not traded — unless it was decided before (redelivered)."""
        if not await self.decided_before(sig.signal_id):
            await self.record(sig, why[0], why[1], detail)

    @staticmethod
    async def kill_switch_reason(
        ks_task: asyncio.Future[KillSwitchState],
    ) -> tuple[str, str] | None:
        return Autotrader.kill_switch_refusal(await ks_task)

    @staticmethod
    def kill_switch_refusal(ks: KillSwitchState) -> tuple[str, str] | None:
        if not ks.active:
            return None
        return "refused", f"kill switch engaged: {ks.reason or 'no reason given'}"

    def skip_reason(self, sig: TradeSignalled | StrategySignalled) -> tuple[str, str] | None:
        s = self.ctx.settings
        age = (datetime.now(UTC) - sig.time).total_seconds()
        if age > s.signal_max_age_s:
            return "expired", f"signal is {age:.0f} s old (max {s.signal_max_age_s:.0f} s)"
        if sig.symbol in s.majors:
            return "skipped", f"{sig.symbol} is a major (TRADE_MAJORS): scanned, never traded"
        return None

    async def stale(self, view: MarketView) -> bool:
        """The signal's data is older than HEATMAP_MAX_AGE_S (a hand-made signal without its
        data time: the coin's oldest stored timeframe)."""
        limit = self.ctx.settings.heatmap_max_age_s
        if view.data_time is not None:
            return (datetime.now(UTC) - view.data_time).total_seconds() > limit
        async with self.ctx.pool.connection() as conn:
            age = await store.heatmap_age_s(conn, view.symbol)
        return age is None or age > limit

    async def refreshed_view(self, sig: TradeSignalled) -> MarketView | Refusal:
        """Pre-trade refresh (SPEC §4): ask the liquidation collector, wait (bounded) for its
        `heatmap.refreshed` event of this coin on the bus, re-read the coin's levels and make
        its market view again — or say why the signal no longer holds."""
        s = self.ctx.settings
        after = await self.ctx.bus.last_id(STREAM_HEATMAPS_REFRESHED)
        await self.ctx.bus.publish(
            STREAM_REFRESH_REQUESTS,
            HeatmapRefreshRequested(symbol=sig.symbol, reason="pre_trade", requested_by=self.name),
        )
        done = await self.ctx.bus.wait_for(
            STREAM_HEATMAPS_REFRESHED,
            lambda e: isinstance(e, HeatmapsRefreshed) and e.symbol == sig.symbol,
            s.pre_trade_refresh_wait_s, after,
        )  # fmt: skip
        if done is None:
            return Refusal(symbol=sig.symbol, code="target_gone", reason=(
                f"heatmaps older than {s.heatmap_max_age_s:.0f} s and no refresh within "
                f"{s.pre_trade_refresh_wait_s:.0f} s"))  # fmt: skip
        inputs = await read_rank_inputs(self.ctx.pool, [sig.symbol], datetime.now(UTC))
        ev = ranking.rank(inputs, self.rank_params)
        if not inputs.symbols or ev.direction[0] != sig.direction or not (ev.target_high[0] > 0):
            now = "no levels" if not inputs.symbols else f"bias {ev.direction[0]}"
            return Refusal(symbol=sig.symbol, code="target_gone", reason=(
                f"after the refresh the {sig.direction} target "
                f"{sig.target_low:g}..{sig.target_high:g} no longer holds ({now})"))  # fmt: skip
        view = ranking.market_view(ev, inputs, self.rank_params, 0)
        self.log.info("pre-trade refresh", symbol=sig.symbol, signal_id=str(sig.signal_id),
                      target_before=[sig.target_low, sig.target_high],
                      target_now=[view.target.low, view.target.high])  # fmt: skip
        return view

    async def instrument(self, symbol: str) -> InstrumentRules:
        return await self.grid.rules(symbol)

    async def commit_plan(
        self, sig: TradeSignalled, plan: TradePlan, view: MarketView, equity: float,
        ks_task: asyncio.Future[KillSwitchState], correlation_id: str, refreshed: bool,
    ) -> uuid.UUID | None:  # fmt: skip
        """Risk guards (the kill switch first) and the trade + order rows, in one transaction
        under the shared lock."""
        # pipelined: BEGIN + lock + (decided yet? exposure) in one round trip, the writes after
        # the risk check and the COMMIT in one more: the shared lock is held about one round trip
        #
        # Committed without waiting for the WAL flush (synchronous_commit off): the rows are
        # visible to every replica at once, and they are durable before this signal is acked
        # on the bus, because record_orders' ordinary commit flushes the WAL up to itself. A
        # database crash in between loses them together with the un-acked signal, which is
        # redelivered and decided again; its orderLinkIds are the same, so the venue answers
        # "already placed" — never a second order. (The flush was most of the signal → ack time.)
        earlier: str | None = None
        outcome: uuid.UUID | str | None = None
        # the JSON of the plan and the view before the lock: the lock is held for the round
        # trips, not for serialising
        dumped = (plan.model_dump(mode="json"), view.model_dump(mode="json"))
        async with self.ctx.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit TO OFF")
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (RISK_LOCK,))
            exp = await store.exposure_unless_decided(
                conn, sig.signal_id, self.venue.name, self.day_start()
            )
            if isinstance(exp, str):  # decided before (redelivered) or by a replica meanwhile
                earlier = exp
            else:
                ks = await ks_task  # read from Redis during the round trip just made
                outcome = await self._commit_guarded(conn, sig, plan, dumped, equity, ks, exp,
                                                     correlation_id, refreshed)  # fmt: skip
        if isinstance(outcome, uuid.UUID):
            return outcome
        if outcome is not None:  # a risk guard refused it (committed above)
            await self.ctx.journal("signal_refused", f"{sig.symbol}: {outcome}", symbol=sig.symbol,
                                   vertical="perps", signal_id=str(sig.signal_id))  # fmt: skip
        elif earlier == "traded":
            await self.resume(sig.signal_id)  # a crash may have left its orders unplaced
        return None

    async def _commit_guarded(
        self, conn: Any, sig: TradeSignalled, plan: TradePlan,
        dumped: tuple[dict[str, Any], dict[str, Any]], equity: float, ks: KillSwitchState,
        exp: store.Exposure, correlation_id: str, refreshed: bool,
    ) -> uuid.UUID | str:  # fmt: skip
        """commit_plan's second half, inside its transaction: the risk check and the writes.
        The trade's id, or the guard's refusal (recorded)."""
        venue = self.venue.name
        trade_id = store.trade_id_for(sig.signal_id)
        plan_json, market_json = dumped
        state = risk.RiskState(
            equity=equity, open_symbols=exp.open_symbols, used_margin=exp.used_margin,
            realised_today=exp.realised_today,
            kill_switch=(ks.reason or "no reason given") if ks.active else None,
            unrealised=self.unrealised_value,
        )  # fmt: skip
        detail = {"plan": plan_json, "market": market_json, "refreshed": refreshed,
                  "exposure": {"open": sorted(exp.open_symbols), "used_margin": exp.used_margin,
                               "realised_today": exp.realised_today}}  # fmt: skip
        margin = plan.margin or 0.0
        refusal = risk.refusal(state, self.limits, sig.symbol, margin)
        if refusal is not None:  # nothing follows to flush it: this commit waits for it
            await conn.execute("SET LOCAL synchronous_commit TO ON")
            await self._record(conn, sig, "refused", refusal, None, detail)
            self.log.info(
                "entry refused", symbol=sig.symbol, signal_id=str(sig.signal_id), reason=refusal
            )
            return refusal
        await store.insert_pending_trade(conn, {
            "trade_id": trade_id, "signal_id": sig.signal_id, "agent": self.agent_name,
            "agent_version": self.version, "scanner": sig.scanner, "scanner_version": sig.scanner_version,
            "source": "auto", "venue": venue, "symbol": sig.symbol, "direction": sig.direction,
            "entry_mode": plan.mode, "leverage": Decimal(str(plan.leverage)), "qty": plan.qty,
            "margin": Decimal(str(round(margin, 8))), "stop_loss": plan.stop_loss,
            "take_profit": plan.take_profit, "initial_stop_loss": plan.stop_loss, "status": "pending",
            "correlation_id": correlation_id or None,
            "metadata": {"score": sig.score, "rank": sig.rank, "plan": plan_json},
        })  # fmt: skip
        side = Side.BUY if plan.direction == "long" else Side.SELL
        await store.insert_created_orders(conn, [
            (store.order_link_id_for(sig.signal_id, o.ladder_index), venue, sig.signal_id, trade_id,
             sig.symbol, side, OrderType.LIMIT, o.qty, o.price, TimeInForce.GTC, False,
             o.ladder_index, plan.stop_loss, plan.take_profit, OrderStatus.SUBMITTING,
             self.agent_name)
            for o in plan.orders
        ])  # fmt: skip
        await self._record(conn, sig, "traded", None, trade_id, detail)
        return trade_id

    async def place(self, signal_id: uuid.UUID, requests: list[OrderRequest] | None = None) -> None:
        """Send the trade's orders still in 'submitting' to the venue and record its answer
        (`requests`: the orders just written, so they need not be read back)."""
        if requests:
            await self.send(requests)
            return
        async with self.ctx.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM orders WHERE signal_id = %s AND status = 'submitting' "
                "ORDER BY reduce_only DESC, ladder_index NULLS FIRST",  # a reversal closes first
                (signal_id,),
            )
            cols = [c.name for c in cur.description or []]
            rows = [dict(zip(cols, r, strict=True)) for r in await cur.fetchall()]
        if not rows:
            return
        requests = [
            OrderRequest(
                r["order_link_id"], r["symbol"], r["side"], r["order_type"], r["qty"], r["price"],
                r["time_in_force"] or TimeInForce.GTC, r["reduce_only"], r["stop_loss"], r["take_profit"],
            )
            for r in rows
        ]  # fmt: skip
        await self.send(requests)

    async def send(self, requests: list[OrderRequest]) -> None:
        symbol = requests[0].symbol
        if symbol not in self.leverage_set:  # once per coin and process: it does not change
            try:
                await self.venue.set_leverage(
                    symbol, Decimal(str(self.ctx.settings.trade_leverage))
                )
                self.leverage_set.add(symbol)
            except ExternalError as exc:
                self.log.info("leverage not changed", symbol=symbol, error=str(exc)[:200])
        placed = await self.venue.place_orders(requests)
        if self.ctx.settings.autotrader_fault == "kill_after_place" and not any(
            o.duplicate for o in placed
        ):
            os.kill(
                os.getpid(), signal.SIGKILL
            )  # testing hook: die between the venue and our write
        await self.record_orders(placed)

    async def record_orders(self, placed: list[Order]) -> None:
        # pipelined: BEGIN and every order's update in one round trip, the COMMIT in another
        async with self.ctx.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await store.apply_venue_orders(conn, placed, self.agent_name)
            rejected = [o for o in placed if o.status is OrderStatus.REJECTED]
            if placed and len(rejected) == len(placed):
                await conn.execute(
                    "UPDATE trades SET status = 'cancelled', close_reason = 'cancelled', notes = %s, "
                    "updated_at = now() WHERE trade_id = (SELECT trade_id FROM orders WHERE order_link_id = %s) "
                    "AND status = 'pending'",
                    (
                        f"venue rejected the entry: {rejected[0].reject_reason}",
                        rejected[0].order_link_id,
                    ),
                )
        self.status_info["traded"] = int(self.status_info.get("traded", 0)) + 1
        for o in placed:
            self.log.info("order at venue", order_link_id=o.order_link_id, status=o.status,
                          duplicate=o.duplicate, symbol=o.symbol)  # fmt: skip

    async def resume(self, signal_id: uuid.UUID) -> None:
        await self.place(signal_id)

    async def record(
        self,
        sig: TradeSignalled | StrategySignalled,
        decision: str,
        reason: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.ctx.pool.connection() as conn, conn.transaction():
            first = await self._record(conn, sig, decision, reason, None, detail or {})
        if (
            not first
        ):  # another replica decided it meanwhile: its decision stands, and is its to tell
            self.log.info("signal already decided by another replica", symbol=sig.symbol,
                          signal_id=str(sig.signal_id))  # fmt: skip
            return
        self.log.info("signal not traded", symbol=sig.symbol, signal_id=str(sig.signal_id),
                      decision=decision, reason=reason)  # fmt: skip
        await self.ctx.journal(f"signal_{decision}", f"{sig.symbol}: {reason}", symbol=sig.symbol,
                               vertical="perps", signal_id=str(sig.signal_id))  # fmt: skip

    async def _record(
        self, conn: Any, sig: TradeSignalled | StrategySignalled, decision: str, reason: str | None,
        trade_id: uuid.UUID | None, detail: dict[str, Any],
    ) -> bool:  # fmt: skip
        """False when the signal already had a decision (another replica's stands)."""
        first = await store.record_decision(
            conn, signal_id=sig.signal_id, agent=self.agent_name, agent_version=self.version,
            instance=self.ctx.instance, decision=decision, reason=reason, symbol=sig.symbol,
            venue=self.venue.name, trade_id=trade_id, detail=detail,
        )  # fmt: skip
        if first:
            self.status_info["decisions"] = int(self.status_info.get("decisions", 0)) + 1
        return first

    def day_start(self) -> datetime:
        return risk.day_start(datetime.now(UTC), self.ctx.settings.timezone).astimezone(UTC)

    # --- reconciliation -------------------------------------------------------------------------------

    async def reconcile(self) -> int:
        """Orders left in 'submitting' (a crash between our write and the venue's answer): the
        venue is asked; an order it holds is recorded, one it never got is placed while its
        signal is fresh, else cancelled with the trade."""
        async with self.ctx.pool.connection() as conn:
            rows = await store.orders_in(conn, self.venue.name, [OrderStatus.SUBMITTING])
        stale_before = datetime.now(UTC) - timedelta(seconds=self.ctx.settings.signal_max_age_s)
        fixed = 0
        for signal_id in dict.fromkeys(r["signal_id"] for r in rows if r["signal_id"] is not None):
            mine = [r for r in rows if r["signal_id"] == signal_id]
            found = [await self.venue.get_order(r["symbol"], r["order_link_id"]) for r in mine]
            held = [o for o in found if o is not None]
            if held:
                await self.record_orders(held)
            if len(held) == len(mine):
                fixed += 1
                continue
            if min(r["created_at"] for r in mine) >= stale_before:
                await self.place(signal_id)
            else:
                await self.cancel_unplaced(signal_id)
            fixed += 1
        return fixed

    async def cancel_unplaced(self, signal_id: uuid.UUID) -> None:
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE orders SET status = 'cancelled', reject_reason = 'never reached the venue', "
                "updated_at = now() WHERE signal_id = %s AND status = 'submitting'",
                (signal_id,),
            )
            await conn.execute(
                "UPDATE trades SET status = 'cancelled', close_reason = 'cancelled', "
                "notes = 'entry never reached the venue', updated_at = now() "
                "WHERE signal_id = %s AND status = 'pending' AND NOT EXISTS "
                "(SELECT 1 FROM orders WHERE signal_id = %s AND status <> 'cancelled')",
                (signal_id, signal_id),
            )
        self.log.warning("unplaced orders cancelled", signal_id=str(signal_id))

    async def guard_daily_loss(self) -> bool:
        """Engage the kill switch when today's realised + unrealised PnL breaches the limit."""
        account = await self.venue.equity()
        async with self.ctx.pool.connection() as conn:
            exp = await store.exposure(conn, self.venue.name, self.day_start())
        today = risk.day_loss(float(account.equity), exp.realised_today,
                              float(account.unrealised_pnl), self.limits.daily_loss_limit_pct)  # fmt: skip
        return await enforce_daily_loss(today, self.killswitch, self.ctx.bus, self.ctx.journal,
                                        by=f"{self.name}:daily_loss_limit")  # fmt: skip

    async def reconcile_pass(self, _cycle: int) -> None:
        try:
            await self.guard_daily_loss()
        except Exception as exc:  # venue or database away: the next cycle checks again
            self.log.warning("daily loss check failed", error=f"{type(exc).__name__}: {exc}"[:300])
        fixed = await self.reconcile()
        if fixed:
            self.log.info("reconciled orders with the venue", signals=fixed)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        signals = self.ctx.bus.consumer(
            STREAM_SIGNALS, group=self.name, name=self.ctx.instance, handler=self.on_signals,
            batch_size=20, claim_idle_ms=s.bus_claim_idle_ms, max_deliveries=s.bus_max_deliveries,
        )  # fmt: skip
        self.status = "ok"
        try:
            await asyncio.gather(
                signals.run(stop),
                every(
                    RECONCILE_EVERY_S, stop, self.reconcile_pass, self.log, "reconcile", delay_s=0
                ),
                every(EQUITY_REFRESH_S, stop, self.equity_pass, self.log, "equity", delay_s=0),
            )
        finally:
            await self.venue.close()
            await self.market.aclose()


def view_of(sig: TradeSignalled) -> MarketView:
    """The market view of a signal published without one (hand-made, or an older ranker):
    its target, price and nothing else (default wick, no cluster stop; data time unknown)."""
    return MarketView(
        symbol=sig.symbol, direction=sig.direction, price=sig.price,
        target=PriceRange(low=sig.target_low, high=sig.target_high),
    )  # fmt: skip
