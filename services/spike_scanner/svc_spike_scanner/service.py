"""Spike scanner: every SPIKE_SCAN_INTERVAL_S, for the coins this replica owns (per-cycle
claims, orphans swept), 1-min and 5-min price moves, 15-min OI change and the 5-min volume
ratio, judged in two modes side by side (fixed SPEC thresholds; the coin's own robust
z-score). Flagged coins become rows (`fast_price_movers`, `oi_volume_spikes`) and heatmap
refresh requests; each coin's own percentiles go to `coin_thresholds`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from quantcore.collect.cycles import cycle_start
from quantcore.math.spikes import SpikeThresholds
from quantcore.model.events import STREAM_REFRESH_REQUESTS, HeatmapRefreshRequested
from quantcore.partition import WorkSplit, split_work
from quantcore.scan import spikes
from quantcore.scan.loop import every
from quantcore.scan.registered import RegisteredScanner
from quantcore.service import ServiceContext
from quantcore.store.series import candle_series, open_interest_series, recent_symbols
from quantcore.store.spikes import upsert_spike_thresholds, write_movers, write_spikes

UNIVERSE_WINDOW = timedelta(minutes=15)  # a coin with no snapshot for this long is not scanned


class SpikeScanner(RegisteredScanner):
    name: ClassVar[str] = "spike_scanner"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "fast movers + OI/volume spikes, fixed and coin-specific modes"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.thresholds = SpikeThresholds(
            move_1m_pct=s.spike_move_1m_pct, move_5m_pct=s.spike_move_5m_pct,
            oi_15m_pct=s.spike_oi_15m_pct, volume_ratio=s.spike_volume_ratio,
            zscore=s.spike_zscore,
        )  # fmt: skip
        self.split = WorkSplit(ctx.redis, s.bus_namespace, self.name, ctx.instance)

    def registry_params(self) -> dict[str, Any]:
        s = self.ctx.settings
        return {
            "thresholds": self.thresholds.__dict__, "lookback_min": s.spike_lookback_min,
            "refresh_mode": s.spike_refresh_mode, "refresh_cooldown_s": s.spike_refresh_cooldown_s,
        }  # fmt: skip

    # --- refresh requests ------------------------------------------------------------------------

    async def request_refreshes(self, symbols: list[str]) -> set[str]:
        """Publish one refresh request per coin, at most one per coin per cooldown (shared by
        the replicas through a Redis key), so a coin spiking for ten minutes is not re-fetched
        every minute. Returns the coins a request was published for."""
        s = self.ctx.settings
        if not symbols:
            return set()
        allowed = symbols
        if s.spike_refresh_cooldown_s > 0:
            async with self.ctx.redis.pipeline(transaction=False) as pipe:
                for sym in symbols:
                    pipe.set(f"{s.bus_namespace}:spike_refresh:{sym}", "1", nx=True,
                             px=int(s.spike_refresh_cooldown_s * 1000))  # fmt: skip
                won = await pipe.execute()
            allowed = [sym for sym, ok in zip(symbols, won, strict=True) if ok]
        if allowed:
            by = f"{self.name}@{self.ctx.instance}"
            await self.ctx.bus.publish_many(
                STREAM_REFRESH_REQUESTS,
                [HeatmapRefreshRequested(symbol=sym, reason="spike", requested_by=by) for sym in allowed],
            )  # fmt: skip
        return set(allowed)

    # --- one scan ---------------------------------------------------------------------------------

    async def scan_coins(self, symbols: list[str], at: datetime) -> dict[str, int]:
        """Read, compute, request refreshes, write: the whole step for a set of coins."""
        s = self.ctx.settings
        async with self.ctx.pool.connection() as conn:
            candles = await candle_series(conn, symbols, at, s.spike_lookback_min)
            oi = await open_interest_series(conn, symbols, at, s.spike_lookback_min)
        result = spikes.scan(candles, oi, at, self.thresholds)
        refreshed = await self.request_refreshes(result.refresh_candidates(s.spike_refresh_mode))
        modes = spikes.MODES if s.spike_refresh_mode == "both" else (s.spike_refresh_mode,)
        marked = {(sym, mode) for sym in refreshed for mode in modes}
        movers = spikes.mover_rows(result, marked, self.name, self.scanner_version)
        spiking = spikes.spike_rows(result, marked, self.name, self.scanner_version)
        percentiles = spikes.coin_percentiles(result)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await write_movers(conn, movers)
            await write_spikes(conn, spiking)
            await upsert_spike_thresholds(
                conn, percentiles, candles.start_time, candles.end_time, self.name,
                self.scanner_version,
            )  # fmt: skip
        if refreshed:
            self.log.info("spikes: refresh requested", coins=sorted(refreshed))
        return {"coins": len(symbols), "movers": len(movers), "spikes": len(spiking),
                "refreshes": len(refreshed)}  # fmt: skip

    async def run_cycle(self, cycle: int, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.spike_scan_interval_s
        at = datetime.fromtimestamp(cycle_start(cycle, interval), UTC)
        async with self.ctx.pool.connection() as conn:
            universe = await recent_symbols(conn, at - UNIVERSE_WINDOW)
        done = await split_work(
            self.split, "spikes", cycle, interval, universe, stop,
            lambda coins: self.scan_coins(coins, at),
        )  # fmt: skip
        self.status_info.update(
            last_cycle=cycle, last_cycle_s=round(done.seconds, 3), **done.totals
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        self.log.info("spike scanner registered", scanner_version=self.scanner_version)
        await every(
            self.ctx.settings.spike_scan_interval_s, stop,
            lambda cycle: self.run_cycle(cycle, stop), self.log, "spike scan",
        )  # fmt: skip
