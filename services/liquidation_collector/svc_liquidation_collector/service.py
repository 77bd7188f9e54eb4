"""Liquidation collector: heatmap levels for every coin × the nine timeframes.

- Background refresh every HEATMAP_REFRESH_INTERVAL_S: each replica claims the coins it owns
  (rendezvous split) for the cycle and refreshes them; after a grace period it sweeps coins
  nobody claimed (a dead replica's), so every coin is refreshed exactly once per cycle.
- Refresh requests (`heatmap.refresh_requests`, consumer group: one replica handles each)
  refresh one coin at once and answer with `heatmap.refreshed`.
- Freshness per coin × timeframe × source is upserted in `liquidation_refreshes`.
- Source: CoinGlass (with a key) or the simulator, both through the CoinGlass adapter; or,
  without a CoinGlass key on real data (HEATMAP_SOURCE=model / estimate), the key-free
  estimate (quantcore.math.liqmodel) from public Bybit candles and open interest, fetched
  into heatmap_inputs as each coin is refreshed (the first refresh backfills a year).
- Hit rate: every HEATMAP_EVAL_INTERVAL_S one replica (per-cycle claim) scores every stored
  heatmap source against the liquidations recorded in the HEATMAP_EVAL_WINDOW_MIN after its
  heatmaps (quantcore.estimate.hit_rate) → `heatmap_hit_rates`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import ClassVar

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.adapters.coinglass.rest import CoinGlassHeatmaps
from quantcore.backoff import Backoff, RepeatLog
from quantcore.bus import Delivery
from quantcore.collect.cycles import cycle_of, cycle_start, sleep_until
from quantcore.config import ConfigError, Settings
from quantcore.errors import PermanentError
from quantcore.estimate.hit_rate import hit_rates
from quantcore.estimate.refresh import estimate_as_of, sync_inputs
from quantcore.math.liqmodel import LeverageMix, ModelParams
from quantcore.model.events import (
    STREAM_HEATMAPS_REFRESHED,
    STREAM_REFRESH_REQUESTS,
    HeatmapRefreshRequested,
    HeatmapsRefreshed,
)
from quantcore.model.market import TIMEFRAMES, Heatmap
from quantcore.partition import WorkSplit, split_work
from quantcore.service import Service, ServiceContext
from quantcore.store.heatmap_eval import write_hit_rates
from quantcore.store.heatmap_inputs import mark_partial
from quantcore.store.heatmaps import write_heatmaps

CONCURRENT_COINS = 8
UNIVERSE_EVERY_S = 3600.0


class RefreshFailed(Exception):
    """No heatmap of a coin could be fetched (a request is then retried by the bus)."""


class LiquidationCollector(Service):
    name: ClassVar[str] = "liquidation_collector"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "heatmap levels, every coin x 9 timeframes"

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        if settings.heatmap_leverage_mix:
            try:
                LeverageMix.parse(settings.heatmap_leverage_mix)
            except ValueError as exc:
                raise ConfigError(f"HEATMAP_LEVERAGE_MIX: {exc}") from None
        if settings.heatmap_source == "coinglass":
            settings.require("coinglass_api_key", why="for HEATMAP_SOURCE=coinglass")

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.source = s.effective_heatmap_source
        self.market = BybitMarketData(
            s.bybit_rest_url, s.bybit_rate_per_s, on_bad=self._reject_bybit
        )
        key = s.coinglass_api_key.get_secret_value() if s.coinglass_api_key else None
        rate = s.coinglass_rate_per_min if self.source == "coinglass" else s.sim_rate_per_min
        self.heatmaps = CoinGlassHeatmaps(
            s.coinglass_heatmap_url, key, rate,
            source="coinglass" if self.source == "coinglass" else "sim", on_bad=self._reject_cg,
        )  # fmt: skip
        self.split = WorkSplit(ctx.redis, s.bus_namespace, self.name, ctx.instance)
        self.base_coin: dict[str, str] = {}
        self.max_leverage: dict[str, float] = {}  # instrument info: the model's leverage cap
        self.timeframes = [t for t in TIMEFRAMES if not (self.source == "coinglass" and t == "14d")]
        self.gate = asyncio.Semaphore(CONCURRENT_COINS)
        mix = LeverageMix.parse(s.heatmap_leverage_mix) if s.heatmap_leverage_mix else LeverageMix()
        self.model_params = ModelParams(mix=mix)

    async def _reject_bybit(self, kind: str, raw: str, reason: str) -> None:
        await self.ctx.bus.reject("bybit", kind, raw, reason)

    async def _reject_cg(self, kind: str, raw: str, reason: str) -> None:
        await self.ctx.bus.reject(self.source, kind, raw, reason)

    # --- universe -------------------------------------------------------------------------------

    async def discover(self, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=1.0, max_s=60.0, floor_s=0.5)
        repeats = RepeatLog(self.log, interval_s=60.0)
        while not stop.is_set():
            try:
                instruments = await self.market.instruments()
                self.base_coin = {
                    i.symbol: i.base_coin for i in instruments if i.quote_coin == "USDT"
                }
                self.max_leverage = {i.symbol: i.max_leverage for i in instruments}
                self.status_info["coins"] = len(self.base_coin)
                self.status = "ok"
                repeats.recovered("discover", "universe discovery works again")
                return
            except Exception as exc:
                self.status = "degraded"
                delay = backoff.delay()
                repeats.failure("discover", "universe discovery failed, retrying",
                                error=str(exc)[:300], retry_in_s=round(delay, 2))  # fmt: skip
                await sleep_until(time.time() + delay, stop)

    # --- one coin ---------------------------------------------------------------------------------

    async def refresh(self, symbol: str, trigger: str, timeframes: list[str] | None = None) -> int:
        """Fetch and store the heatmaps of one coin; returns levels written."""
        base = self.base_coin.get(symbol)
        if base is None:
            self.log.warning("refresh of a coin outside the universe ignored", symbol=symbol)
            return 0
        if self.source == "estimate":
            return await self.refresh_estimate(symbol, trigger)
        wanted = [t for t in (timeframes or self.timeframes) if t in self.timeframes]
        async with self.gate:
            started = time.monotonic()
            results = await asyncio.gather(
                *(self.heatmaps.heatmap(base, symbol, tf) for tf in wanted), return_exceptions=True
            )
            maps: list[Heatmap] = []
            for tf, res in zip(wanted, results, strict=True):
                if isinstance(res, Heatmap):
                    maps.append(res)
                elif isinstance(res, PermanentError):
                    self.log.warning(
                        "heatmap refused by the source", symbol=symbol, timeframe=tf, error=str(res)
                    )
                else:
                    self.log.warning(
                        "heatmap fetch failed", symbol=symbol, timeframe=tf, error=str(res)[:300]
                    )
            if not maps:
                raise RefreshFailed(f"{symbol}: no timeframe could be fetched")
            at = datetime.now(UTC)
            duration_ms = int((time.monotonic() - started) * 1000)
            async with self.ctx.pool.connection() as conn, conn.transaction():
                written = await write_heatmaps(
                    conn, maps, at, trigger, self.ctx.instance, duration_ms
                )
        await self.ctx.bus.publish(
            STREAM_HEATMAPS_REFRESHED,
            HeatmapsRefreshed(
                symbol=symbol, source=self.source, time=at, timeframes=[m.timeframe for m in maps],
                level_count=sum(len(m.levels) for m in maps), trigger=trigger,
            ),
        )  # fmt: skip
        return written

    async def refresh_estimate(self, symbol: str, trigger: str) -> int:
        """The key-free estimate of one coin: fetch its missing inputs from the public
        endpoints, estimate all nine timeframes, store them (flagged partial when the inputs
        do not cover them)."""
        async with self.gate:
            started = time.monotonic()
            at = datetime.now(UTC)
            async with self.ctx.pool.connection() as conn:
                synced = await sync_inputs(
                    self.market, conn, symbol, at, self.ctx.settings.data_source
                )
                est = await estimate_as_of(conn, [symbol], at, self.model_params, self.max_leverage)
            if synced.errors:
                self.log.warning(
                    "heatmap inputs: fetch failed, estimating from what is stored",
                    symbol=symbol, errors=list(synced.errors),
                )  # fmt: skip
            if synced.empty:
                self.log.info(
                    "heatmap inputs: the venue returned nothing new", symbol=symbol,
                    series=list(synced.empty),
                )  # fmt: skip
            if est.intervals[0] == 0:
                self.log.warning("heatmap estimate: no inputs stored for the coin", symbol=symbol)
                raise RefreshFailed(f"{symbol}: no inputs for the estimate")
            maps = est.heatmaps
            if not maps:
                self.log.warning(
                    "heatmap estimate: no levels (no open interest known)", symbol=symbol,
                    intervals=int(est.intervals[0]),
                )  # fmt: skip
                raise RefreshFailed(f"{symbol}: the estimate has no levels")
            partial = est.partial(0)
            if partial:
                self.log.info(
                    "heatmap estimate from partial inputs", symbol=symbol,
                    history_days=round(float(est.grid.covered_s[0]) / 86_400, 2),
                    intervals=int(est.intervals[0]), without_oi=int(est.without_oi[0]),
                    fetched=synced.intervals,
                )  # fmt: skip
            duration_ms = int((time.monotonic() - started) * 1000)
            async with self.ctx.pool.connection() as conn, conn.transaction():
                written = await write_heatmaps(
                    conn, maps, at, trigger, self.ctx.instance, duration_ms
                )
                await mark_partial(conn, symbol, "estimate", at, partial)
        await self.ctx.bus.publish(
            STREAM_HEATMAPS_REFRESHED,
            HeatmapsRefreshed(
                symbol=symbol, source=self.source, time=at, timeframes=[m.timeframe for m in maps],
                level_count=sum(len(m.levels) for m in maps), trigger=trigger,
            ),
        )  # fmt: skip
        return written

    async def _refresh_many(self, symbols: list[str], trigger: str) -> int:
        results = await asyncio.gather(
            *(self.refresh(s, trigger) for s in symbols), return_exceptions=True
        )
        for symbol, res in zip(symbols, results, strict=True):
            if isinstance(res, BaseException):
                self.log.warning("coin refresh failed", symbol=symbol, error=str(res)[:300])
        return sum(r for r in results if isinstance(r, int))

    # --- background cycle ---------------------------------------------------------------------------

    async def run_cycle(self, cycle: int, stop: asyncio.Event) -> None:
        async def refresh_coins(coins: list[str]) -> dict[str, int]:
            return {"levels": await self._refresh_many(coins, "schedule")}

        done = await split_work(
            self.split, "heatmap", cycle, self.ctx.settings.heatmap_refresh_interval_s,
            sorted(self.base_coin), stop, refresh_coins,
        )  # fmt: skip
        self.status_info.update(
            last_cycle=cycle, last_cycle_coins=len(done.coins),
            last_cycle_levels=done.totals.get("levels", 0), last_cycle_s=round(done.seconds, 2),
        )  # fmt: skip

    async def cycle_loop(self, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.heatmap_refresh_interval_s
        while not stop.is_set():
            cycle = cycle_of(interval)
            try:
                await self.run_cycle(cycle, stop)
            except Exception as exc:
                self.log.warning("refresh cycle failed", error=str(exc)[:300])
            if not await sleep_until(cycle_start(cycle + 1, interval), stop):
                return

    # --- hit rate against recorded liquidations -------------------------------------------------------

    async def evaluate_once(self, cycle: int) -> int:
        """Score every heatmap source once for this cycle (one replica does it); rows written."""
        s = self.ctx.settings
        ttl = s.heatmap_eval_interval_s * 2
        if not await self.split.claim("hit_rate", cycle, ["all"], ttl_s=ttl):
            return 0
        now = datetime.now(UTC)
        async with self.ctx.pool.connection() as conn:
            rates = await hit_rates(conn, now, s.heatmap_eval_window_min)
            written = await write_hit_rates(conn, [r.row() for r in rates])
        for r in rates:
            got = r.scored.realised
            self.log.info(
                "heatmap hit rate", heatmap_source=r.heatmap_source, coins=r.scored.coins,
                clusters=r.scored.clusters, reached=got.reached, hit=got.hit,
                precision_pct=None if got.reached == 0 else round(got.precision_pct, 1),
                recall_pct=None if got.value_total <= 0 else round(got.recall_pct, 1),
                window_min=r.window_min,
            )  # fmt: skip
        return written

    async def eval_loop(self, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.heatmap_eval_interval_s
        while not stop.is_set():
            cycle = cycle_of(interval)
            try:
                await self.evaluate_once(cycle)
            except Exception as exc:
                self.log.warning("heatmap hit-rate evaluation failed", error=str(exc)[:300])
            if not await sleep_until(cycle_start(cycle + 1, interval), stop):
                return

    # --- refresh requests --------------------------------------------------------------------------------

    async def on_requests(self, deliveries: list[Delivery]) -> None:
        symbols: dict[str, HeatmapRefreshRequested] = {}
        for d in deliveries:
            if isinstance(d.event, HeatmapRefreshRequested):
                symbols[d.event.symbol] = d.event  # several requests for one coin: one refresh
        for symbol, req in symbols.items():
            await self.refresh(symbol, req.reason, req.timeframes)

    async def universe_loop(self, stop: asyncio.Event) -> None:
        while await sleep_until(time.time() + UNIVERSE_EVERY_S, stop):
            await self.discover(stop)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        requests = self.ctx.bus.consumer(
            STREAM_REFRESH_REQUESTS, group=self.name, name=self.ctx.instance, handler=self.on_requests,
            batch_size=50, claim_idle_ms=s.bus_claim_idle_ms, max_deliveries=s.bus_max_deliveries,
        )  # fmt: skip
        try:
            await self.discover(stop)
            await asyncio.gather(
                self.cycle_loop(stop), requests.run(stop), self.universe_loop(stop),
                self.eval_loop(stop),
            )  # fmt: skip
        finally:
            await self.heatmaps.aclose()
            await self.market.aclose()
