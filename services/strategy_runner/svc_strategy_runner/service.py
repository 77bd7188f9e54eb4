"""Strategy runner: the strategy plug-ins named in STRATEGIES run live, on the bars the
collectors stored, through the same entry point the backtester's decisions come from.

Every STRATEGY_INTERVAL_S: the last STRATEGY_WINDOW_MIN 1-min candles of each coin (with open
interest and funding, and for a plug-in that reads them the heatmap refreshes the liquidation
collector stored) are read the way the backtester's `db` tape reads them
(quantcore.store.backtests, checked and shaped by quantcore.backtest.tapes — a coin with a gap
is skipped with a log line; heatmaps through the one StoredHeatmaps reader, stamped at the
refresh time), and each strategy's `decide` runs on every bar that closed since its last look,
seeing no refresh stamped after that bar's close (a strategy that reads open interest waits
for the snapshot stamped at the bar's close; one that reads heatmaps waits HEATMAP_SETTLE_S
after the close for a refresh stamped at or before it to be written). A
decision becomes a `signals` row (scanner = the plug-in's name, scanner_version = its version
+ settings hash, registered in `scanners`) and then a `signal.strategy` event on the
`signals` stream, which the autotrader trades. Ids are derived from (strategy, version, coin,
bar): replicas or a restart deciding the same bar make one signal.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from quantcore.backtest.tapes import RawCandles, StoredHeatmaps, TapeError, check_and_shape
from quantcore.config import ConfigError, Settings
from quantcore.logging import correlation
from quantcore.model.events import STREAM_SIGNALS, StrategySignalled
from quantcore.model.market import HeatmapSource, heatmap_source
from quantcore.scan.loop import every
from quantcore.service import Service, ServiceContext
from quantcore.store import rankings as signals_store
from quantcore.store.backtests import latest_candle, load_candles, tape_symbols
from quantcore.store.scanners import register
from quantcore.strategies.base import Bars, Signal, Strategy
from quantcore.strategies.live import (
    Cursor,
    StrategyError,
    new_decisions,
    signal_id,
    strategies_from,
)

REPUBLISH_WITHIN = timedelta(days=1)
REPUBLISH_AFTER = timedelta(seconds=5)
# a refresh is stamped when its fetch ends and written at once: after this many seconds past a
# bar's close every refresh stamped at or before it is in (a bar is decided then at the latest)
HEATMAP_SETTLE_S = 30


def configured(settings: Settings) -> list[Strategy[Any]]:
    """The strategies of STRATEGIES, or ConfigError saying what is wrong (exit code 2)."""
    try:
        strategies = strategies_from(settings.strategies)
    except StrategyError as exc:
        raise ConfigError(str(exc)) from None
    for st in strategies:
        if st.warmup >= settings.strategy_window_min:
            raise ConfigError(
                f"STRATEGY_WINDOW_MIN ({settings.strategy_window_min}) must exceed {st.name}'s "
                f"warm-up of {st.warmup} bars"
            )
    return strategies


class StrategyRunner(Service):
    name: ClassVar[str] = "strategy_runner"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "strategy plug-ins picked by name, live on closed 1-min bars"

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        configured(settings)

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.strategies = configured(ctx.settings)
        self.cursors = {st.name: Cursor() for st in self.strategies}
        self.versions: dict[str, str] = {}  # strategy → registry version (version + params hash)
        # per plug-in that reads heatmaps: its stored refreshes, kept across looks
        self.heatmaps = {
            st.name: StoredHeatmaps() for st in self.strategies if "heatmap" in st.needs
        }
        self.status_info.update(strategies=[st.name for st in self.strategies], signals=0)

    async def register(self) -> None:
        async with self.ctx.pool.connection() as conn:
            for st in self.strategies:
                self.versions[st.name] = await register(
                    conn, st.name, st.version, st.params.model_dump(mode="json"),
                    st.description or f"strategy plug-in {st.name}",
                )  # fmt: skip
        self.status_info["scanner_versions"] = dict(self.versions)

    # --- one look -------------------------------------------------------------------------------

    async def read_bars(self) -> tuple[list[Bars], dict[str, int]]:
        """Each coin's window of stored 1-min bars, and the newest open-interest time per coin."""
        s = self.ctx.settings
        async with self.ctx.pool.connection() as conn:
            newest = await latest_candle(conn)
            if newest is None:
                return [], {}
            end = newest + timedelta(minutes=1)
            start = end - timedelta(minutes=s.strategy_window_min)
            symbols = s.strategy_symbol_list or await tape_symbols(conn, start, end, None)
            stored = [await load_candles(conn, sym, start, end, None) for sym in symbols]
        tape, oi_known = [], {}
        for c in stored:
            if c.start_s.size == 0:
                continue
            raw = RawCandles(
                c.symbol, c.start_s, c.ohlcv, c.oi_time_s, c.oi, c.funding_time_s, c.funding
            )
            try:
                tape.append(check_and_shape(raw))
            except TapeError as exc:  # a gap the collector has not repaired yet: next look
                self.log.warning("coin skipped this look", symbol=c.symbol, reason=str(exc)[:300])
                continue
            oi_known[c.symbol] = int(c.oi_time_s.max()) if c.oi_time_s.size else 0
        return tape, oi_known

    async def look(self, _cycle: int = 0) -> int:
        """Decide every newly closed bar of every coin for every strategy; returns the signals."""
        await self.republish_pending()
        tape, oi_known = await self.read_bars()
        fed = await self.read_heatmaps(tape)
        published = 0
        newest = 0
        now_s = int(datetime.now(UTC).timestamp())
        for bars in tape:
            closed_s = int(bars.close_s[-1])  # the collectors store closed candles only
            newest = max(newest, closed_s)
            for st in self.strategies:
                known_s = closed_s
                if "open_interest" in st.needs:  # the bar's OI snapshot must be in first
                    known_s = min(known_s, oi_known.get(bars.symbol, 0))
                seen = fed.get(st.name, {}).get(bars.symbol, bars)  # with its heatmaps
                if seen.heatmap is not None:  # the refreshes stamped by the close must be in
                    ts = seen.heatmap.refreshed_s
                    last = int(ts[-1]) if ts.size else 0
                    known_s = min(known_s, max(last, now_s - HEATMAP_SETTLE_S))
                cursor = self.cursors[st.name]
                before = cursor.decided.get(bars.symbol)
                try:
                    found = new_decisions(st, seen, cursor, known_s)
                except Exception as exc:  # a plug-in's own error: the others carry on
                    self.log.warning("strategy failed on the bars", strategy=st.name,
                                     symbol=bars.symbol, error=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
                    continue
                try:
                    for sig in found:
                        published += await self.signal(st, sig, self.source_of(st, sig))
                except Exception:  # not written or not published: decided again next look
                    if before is None:  # (same ids: a signal already written is kept once)
                        cursor.decided.pop(bars.symbol, None)
                    else:
                        cursor.decided[bars.symbol] = before
                    raise
        firsts = [t for c in self.cursors.values() for t in c.first.values()]
        through = [t for c in self.cursors.values() for t in c.decided.values()]
        self.status_info.update(
            coins=len(tape), signals=int(self.status_info.get("signals", 0)) + published,
            newest_bar=datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
            # every strategy has decided every coin through this bar close
            decided_through=datetime.fromtimestamp(min(through), UTC).isoformat() if through else None,
            decided_from=datetime.fromtimestamp(min(firsts), UTC).isoformat() if firsts else None,
        )  # fmt: skip
        return published

    async def read_heatmaps(self, tape: list[Bars]) -> dict[str, dict[str, Bars]]:
        """Per plug-in that reads heatmaps, the coins with a bar it has not decided: their bars
        with the refreshes stamped up to the newest bar close, those the plug-in reads read
        (the new ones only: kept across looks)."""
        if not self.heatmaps or not tape:
            return {}
        end_s = max(int(b.close_s[-1]) for b in tape)
        out = {}
        async with self.ctx.pool.connection() as conn:
            for st in self.strategies:
                if st.name not in self.heatmaps:
                    continue
                decided = self.cursors[st.name].decided
                new = [b for b in tape if int(b.close_s[-1]) > decided.get(b.symbol, 0)]
                fed = await self.heatmaps[st.name].load(conn, st, new, end_s)
                out[st.name] = {b.symbol: b for b in fed}
        self.status_info["heatmap_refreshes_read"] = sum(h.read for h in self.heatmaps.values())
        return out

    def source_of(self, st: Strategy[Any], sig: Signal) -> HeatmapSource | None:
        """The heatmap that fed the signal: its refresh as of the signal's bar close."""
        hm = self.heatmaps.get(st.name)
        level_source = hm.source_at(sig.symbol, int(sig.time.timestamp())) if hm else None
        return heatmap_source(level_source) if level_source else None

    async def signal(
        self, st: Strategy[Any], sig: Signal, source: HeatmapSource | None = None
    ) -> int:
        """Write the signal row, then publish its event (at least once: the row holds it)."""
        version = self.versions[st.name]
        sid = signal_id(st.name, version, sig.symbol, int(sig.time.timestamp()))
        event = StrategySignalled(
            signal_id=sid, time=sig.time, symbol=sig.symbol, direction=sig.side, price=sig.price,
            strategy=st.name, strategy_version=st.version, scanner=st.name,
            scanner_version=version, stop_loss_pct=sig.stop_loss_pct,
            take_profit_pct=sig.take_profit_pct, reason=sig.reason,
        )  # fmt: skip
        row = signals_store.SignalRow(
            time=sig.time, signal_id=sid, symbol=sig.symbol, direction=sig.side, price=sig.price,
            scanner=st.name, scanner_version=version, agent=self.ctx.agent, vertical="perps",
            correlation_id=str(sid), status="new",
            heatmap_source=source,  # the heatmap that fed it (None: the plug-in reads none)
            inputs={
                "strategy": {"name": st.name, "version": st.version,
                             "params": st.params.model_dump(mode="json"), "reason": sig.reason,
                             "stop_loss_pct": sig.stop_loss_pct,
                             "take_profit_pct": sig.take_profit_pct},
                "event": event.model_dump(mode="json"),
            },
        )  # fmt: skip
        with correlation(str(sid)):
            async with self.ctx.pool.connection() as conn, conn.transaction():
                inserted = await signals_store.insert_signal(conn, row)
            if not inserted:
                return 0  # this bar's signal exists (another replica, or before a restart)
            await self.publish(event)
            self.log.info("strategy signal", strategy=st.name, scanner_version=version,
                          symbol=sig.symbol, direction=sig.side, bar_close=sig.time.isoformat(),
                          price=sig.price)  # fmt: skip
            await self.ctx.journal(
                "signal.published", f"{st.name}: {sig.side} {sig.symbol} at {sig.price:g}",
                symbol=sig.symbol, vertical="perps", signal_id=str(sid), scanner=st.name,
                scanner_version=version,
            )  # fmt: skip
        return 1

    async def publish(self, event: StrategySignalled) -> None:
        await self.ctx.bus.publish(STREAM_SIGNALS, event, correlation_id=str(event.signal_id))
        async with self.ctx.pool.connection() as conn:
            await signals_store.mark_published(conn, event.signal_id, event.time)

    async def republish_pending(self) -> int:
        now = datetime.now(UTC)
        async with self.ctx.pool.connection() as conn:
            pending = await signals_store.unpublished_signals(
                conn, now - REPUBLISH_WITHIN, now - REPUBLISH_AFTER, list(self.versions)
            )
        for raw in pending:
            event = StrategySignalled.model_validate(raw)
            await self.publish(event)
            self.log.warning("unpublished signal published late", signal_id=str(event.signal_id))
        return len(pending)

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        self.log.info("strategy runner registered", strategies=self.versions,
                      window_min=self.ctx.settings.strategy_window_min)  # fmt: skip
        self.status = "ok"

        async def one(cycle: int) -> None:
            await self.look(cycle)

        await every(self.ctx.settings.strategy_interval_s, stop, one, self.log, "strategy look",
                    delay_s=0)  # fmt: skip


__all__ = ["StrategyRunner", "configured"]
