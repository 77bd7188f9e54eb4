"""Ranker: the global view, so one leader acts and the other replicas stand by.

Leadership is a Redis lease (quantcore.leader): the leader renews it every lease/3 and stops
acting the moment it cannot; standbys poll and take over within about RANKER_LEASE_S. Each
RANK_INTERVAL_S cycle is claimed once (WorkSplit "rank"), so even two leaders overlapping
never write two ranking sets for one cycle. A cycle: read the latest levels of every coin × 9
timeframes, prices, typical sizes, success rates and wicks → quantcore.math.universe.evaluate
→ top N to `coin_rankings` → trigger check of the top coins → the trade decision (quantcore.trading.decision,
on the coin's venue grid from `instruments`) →
`signals` + `signal.trade` carrying the typed plan (a refused plan is journalled, not signalled).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from psycopg import AsyncConnection

from quantcore.collect.cycles import cycle_start
from quantcore.leader import LeaderLease
from quantcore.logging import correlation
from quantcore.math.universe import UniverseEvaluation
from quantcore.math.values import clean
from quantcore.model.events import STREAM_SIGNALS, TradeSignalled
from quantcore.model.plan import Decision, Direction, MarketView, Refusal
from quantcore.partition import WorkSplit
from quantcore.scan import ranking
from quantcore.scan import trigger as trig
from quantcore.scan.loop import every
from quantcore.scan.rank_inputs import read_rank_inputs
from quantcore.scan.registered import RegisteredScanner
from quantcore.service import ServiceContext
from quantcore.store import rankings as store
from quantcore.store.instruments import instrument_rules
from quantcore.store.levels import heatmap_symbols
from quantcore.store.series import (
    candle_series,
    open_interest_series,
)
from quantcore.trading.decision import DecisionSettings, decide

UNIVERSE_WINDOW = timedelta(hours=2)  # coins whose heatmaps were refreshed this recently
SPIKE_WINDOW = timedelta(minutes=15)  # a spike row this recent is "the spike behind" a signal
READ_SLICES = 4  # the levels of all coins are read in this many concurrent queries
REPUBLISH_WITHIN = timedelta(days=1)  # older unpublished signals are stale: not traded any more
REPUBLISH_AFTER = timedelta(seconds=5)  # give an in-flight publish time to stamp its row


class LeadershipLost(Exception):
    pass


class Ranker(RegisteredScanner):
    name: ClassVar[str] = "ranker"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "ranks every coin, top 10 per cycle, trade trigger on the top 3"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.params = ranking.RankParams.from_settings(s)
        self.decision = DecisionSettings.from_settings(s)
        self.trigger = trig.TriggerParams.from_settings(s)
        self.split = WorkSplit(ctx.redis, s.bus_namespace, self.name, ctx.instance)
        self.lease = LeaderLease(
            ctx.redis, s.bus_namespace, self.name, ctx.instance, s.ranker_lease_s
        )
        self.status_info["leader"] = False

    def _check_lease(self) -> None:
        if not self.lease.held:
            raise LeadershipLost("lease lost: not writing")

    def registry_params(self) -> dict[str, Any]:
        return (
            self.params.registry()
            | trig.params_registry(self.trigger)
            | {"decision": clean(asdict(self.decision))}
        )

    # --- one cycle --------------------------------------------------------------------------------

    async def read_inputs(self, at: datetime) -> ranking.RankInputs:
        async with self.ctx.pool.connection() as conn:
            symbols = await heatmap_symbols(conn, at - UNIVERSE_WINDOW)
        slices = max(1, min(READ_SLICES, self.ctx.settings.db_pool_max))
        hybrid = (
            timedelta(minutes=self.params.hybrid_window_min)
            if self.params.hybrid_boost > 0
            else None
        )
        return await read_rank_inputs(self.ctx.pool, symbols, at, slices, hybrid)

    async def rank_cycle(self, cycle: int) -> dict[str, Any]:
        """Rank, write the top N, check the trigger of the watched coins, signal. Returns
        figures for the status; writes nothing once the lease is gone."""
        interval = self.ctx.settings.rank_interval_s
        at = datetime.fromtimestamp(cycle_start(cycle, interval), UTC)
        cycle_id = f"{cycle}"
        started = time.monotonic()
        async with self.ctx.pool.connection() as conn:
            if await store.cycle_ranked(conn, cycle_id, at):
                return {"skipped": True}
        inputs = await self.read_inputs(at)
        read_s = time.monotonic() - started
        ev = ranking.rank(inputs, self.params)
        chosen = ranking.top(ev, self.params.top_n)
        rows = ranking.ranking_rows(
            ev, inputs, self.params, chosen, at, cycle_id, self.name, self.scanner_version
        )
        self._check_lease()
        async with self.ctx.pool.connection() as conn, conn.transaction():
            written = await store.write_rankings(conn, rows)
        signals = await self.check_triggers(
            ev, inputs, chosen[: self.params.watch_top], at, cycle_id
        )
        return {
            "cycle_id": cycle_id, "coins": len(inputs.symbols), "ranked": written,
            "signals": signals, "read_s": round(read_s, 3),
            "cycle_s": round(time.monotonic() - started, 3),
            "top": [ev.symbols[i] for i in chosen[:3]],
        }  # fmt: skip

    async def check_triggers(
        self, ev: UniverseEvaluation, inputs: ranking.RankInputs, watch: list[int], at: datetime,
        cycle_id: str,
    ) -> int:  # fmt: skip
        if not watch:
            return 0
        symbols = [ev.symbols[i] for i in watch]
        async with self.ctx.pool.connection() as conn:
            candles = await candle_series(conn, symbols, at, self.trigger.candle_minutes)
            oi = await open_interest_series(conn, symbols, at, self.trigger.oi_minutes)
        checks = trig.check(
            candles, oi, {ev.symbols[i]: ev.direction[i] for i in watch}, self.trigger
        )
        published = 0
        for rank, i in enumerate(watch, start=1):
            tv = checks[ev.symbols[i]]
            if not tv.fires:
                continue
            # the signal's id is its correlation id from here on: the ranker's own log lines
            # and journal entries about it, the autotrader's order, the trade, the messages
            with correlation(str(ranking.signal_id(cycle_id, ev.symbols[i]))):
                if await self.signal(ev, inputs, i, rank, tv, at, cycle_id):
                    published += 1
        return published

    async def signal(
        self, ev: UniverseEvaluation, inputs: ranking.RankInputs, i: int, rank: int,
        tv: trig.TriggerCheck, at: datetime, cycle_id: str,
    ) -> bool:  # fmt: skip
        p = self.params
        symbol = ev.symbols[i]
        direction: Direction = "long" if ev.direction[i] == "long" else "short"
        sid = ranking.signal_id(cycle_id, symbol)
        async with self.ctx.pool.connection() as conn:
            if await store.in_cooldown(
                conn, symbol, direction, at, timedelta(seconds=p.cooldown_s), sid, self.name
            ):
                self.log.info("trigger in cooldown: no signal", symbol=symbol, direction=direction)
                return False
            # this cycle's spike scan is stamped with the same boundary, or written moments later
            spike = await store.spike_seen(conn, symbol, at - SPIKE_WINDOW, at + SPIKE_WINDOW)
            view = ranking.market_view(ev, inputs, p, i)
            plan = await self.plan(conn, view)
        if isinstance(plan, Refusal):
            self.log.info("trigger fired, plan refused: no signal", symbol=symbol,
                          direction=direction, code=plan.code, reason=plan.reason)  # fmt: skip
            await self.ctx.journal(
                "signal.refused", f"{direction} {symbol}: {plan.reason}", symbol=symbol,
                vertical="perps", cycle_id=cycle_id, code=plan.code,
                scanner_version=self.scanner_version,
            )  # fmt: skip
            return False
        target = (view.target.low + view.target.high) / 2
        source = ranking.coin_heatmap_source(ev, inputs, i)
        entry, stop, tp = float(plan.entry), float(plan.stop_loss), float(plan.take_profit)
        score, price = float(ev.score[i]), float(inputs.price[i])
        event = TradeSignalled(
            signal_id=sid, time=at, cycle_id=cycle_id, symbol=symbol, direction=direction,
            rank=rank, score=score, entry_mode=plan.mode, entry_price=entry,
            stop_loss=stop, take_profit=tp, target_price=target,
            target_low=view.target.low, target_high=view.target.high,
            price=price, imbalance=float(ev.ratio[i]),
            cluster_size_pct=float(ev.size_pct[i]), success_rate=float(ev.success[i]),
            oi_change_15m_pct=tv.oi_15m_pct or 0.0, volume_ratio_5m=tv.volume_ratio_5m or 0.0,
            price_change_5m_pct=tv.price_change_5m_pct or 0.0, scanner=self.name,
            scanner_version=self.scanner_version, heatmap_source=source, market=view, plan=plan,
        )  # fmt: skip
        row = store.SignalRow(
            time=at, signal_id=sid, symbol=symbol, direction=direction, score=score, rank=rank,
            cycle_id=cycle_id, entry_mode=plan.mode, entry_price=entry, stop_loss=stop,
            take_profit=tp, target_price=target, price=price, imbalance=event.imbalance,
            cluster_size_pct=event.cluster_size_pct, success_rate=event.success_rate,
            oi_change_15m_pct=tv.oi_15m_pct, volume_ratio_5m=tv.volume_ratio_5m,
            price_change_5m_pct=tv.price_change_5m_pct, scanner=self.name,
            scanner_version=self.scanner_version, agent=self.ctx.agent, vertical="perps",
            correlation_id=str(sid), status="new", heatmap_source=source,
            inputs={
                "ranking": ranking.ranking_inputs(ev, inputs, p, i),
                "trigger": tv.inputs(),
                "trade": {"market": view.model_dump(mode="json"), "plan": plan.model_dump(mode="json")},
                "spike": spike,
                "event": event.model_dump(mode="json"),  # the outbox copy
            },
        )  # fmt: skip
        self._check_lease()
        async with self.ctx.pool.connection() as conn, conn.transaction():
            inserted = await store.insert_signal(conn, row)
        if not inserted:
            return False  # this cycle's signal exists: never published twice
        await self.publish_signal(event)
        self.log.info("trade signal", symbol=symbol, direction=direction, rank=rank,
                      signal_id=str(sid), entry=entry, stop=stop, tp=tp,
                      heatmap_source=source)  # fmt: skip
        await self.ctx.journal(
            "signal.published", f"{direction} {symbol} (rank {rank}, score {score:.1f})",
            symbol=symbol, vertical="perps", signal_id=str(sid), cycle_id=cycle_id,
            scanner_version=self.scanner_version,
        )  # fmt: skip
        return True

    async def plan(self, conn: AsyncConnection[Any], view: MarketView) -> Decision:
        """The signal's plan, on the venue's grid of the coin (the instruments table): the
        autotrader re-makes the same decision on the same grid, so the plan announced with the
        signal is the orders it places, to the tick. A coin whose grid was never discovered is
        planned off the grid (the plan's tick_size is None and its reasons say so)."""
        rules = (await instrument_rules(conn, [view.symbol])).get(view.symbol)
        if rules is None:
            self.log.warning("no instrument grid for the coin: plan off the grid",
                             symbol=view.symbol)  # fmt: skip
        return decide(view, self.decision, None, rules)

    async def publish_signal(self, event: TradeSignalled) -> None:
        """Publish, then stamp the row: a crash in between is repaired by republish_pending."""
        await self.ctx.bus.publish(STREAM_SIGNALS, event, correlation_id=str(event.signal_id))
        async with self.ctx.pool.connection() as conn:
            await store.mark_published(conn, event.signal_id, event.time)

    async def republish_pending(self, now: datetime | None = None) -> int:
        """Signals written but never published (the previous leader died in between): publish
        them now. At least once: consumers dedupe on signal_id."""
        now = now or datetime.now(UTC)
        async with self.ctx.pool.connection() as conn:
            pending = await store.unpublished_signals(
                conn, now - REPUBLISH_WITHIN, now - REPUBLISH_AFTER, [self.name]
            )
        for raw in pending:
            event = TradeSignalled.model_validate(raw)
            self._check_lease()
            await self.publish_signal(event)
            self.log.warning("unpublished signal published late", signal_id=str(event.signal_id),
                             symbol=event.symbol)  # fmt: skip
        return len(pending)

    # --- leadership -----------------------------------------------------------------------------

    async def lead(self, lost: asyncio.Event) -> None:
        interval = self.ctx.settings.rank_interval_s

        async def one(cycle: int) -> None:
            if not await self.split.claim("rank", cycle, ["all"], ttl_s=interval * 2):
                return  # another leader (or this one before a restart) has this cycle
            try:
                await self.republish_pending()
                figures = await self.rank_cycle(cycle)
            except LeadershipLost:
                self.log.warning("leadership lost during a cycle: stopped", cycle=cycle)
                return
            self.status_info.update(last_cycle=cycle, **figures)
            self.log.info("ranking cycle", **figures)

        await every(interval, lost, one, self.log, "ranking cycle")

    def _on_change(self, leader: bool) -> None:
        self.status_info["leader"] = leader

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        self.log.info("ranker registered; standing by for leadership",
                      scanner_version=self.scanner_version)  # fmt: skip
        await self.lease.run(stop, self.lead, on_change=self._on_change)
