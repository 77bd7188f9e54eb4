"""Market collector: the universe, per-minute snapshots, live 1-min candles and liquidations.

- Universe: every linear USDT perp in status Trading (paginated instruments-info), hourly;
  their price and qty grid → `instruments` (the ranker plans signals on it).
- Snapshots: once per SNAPSHOT_INTERVAL_S one replica (per-cycle claim) fetches all tickers in
  one call and writes `market_snapshots`, then publishes `market.snapshotted`.
- Live: each replica streams the coins it owns (rendezvous split over live replicas) over the
  public WebSocket: closed 1-min candles → `ohlcv`, liquidations → `liquidation_events`.
  Buffered and flushed every few seconds; a failed flush keeps the buffer.
- Gap repair: at start, after a stream (re)start and every few minutes, each replica fills the
  missing candles of its coins over REST (up to BACKFILL_MAX_DAYS back), then the open
  interest its snapshots lack over the last OI_BACKFILL_HOURS (5-min history, idempotent).
- Heatmap-model inputs (when the heatmap source is the model): the public trades of its coins
  as taker buy / sell volume per minute → `taker_flow`; every INPUTS_EVERY_S the long/short
  account ratio (backfilled a year back at first, then resumed) → `account_ratios`, and
  hourly the risk-limit tiers → `risk_limit_tiers` (quantcore.estimate.collected).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import ClassVar

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.adapters.bybit.ws import BybitPublicStream
from quantcore.backoff import Backoff, RepeatLog
from quantcore.collect.candles import repair_gaps
from quantcore.collect.cycles import cycle_of, cycle_start, sleep_until
from quantcore.collect.open_interest import repair_open_interest
from quantcore.estimate.collected import sync_collected
from quantcore.model.events import STREAM_SNAPSHOTS, MarketSnapshotted
from quantcore.model.market import Candle, LiquidationEvent, TakerFlow, Ticker
from quantcore.partition import WorkSplit
from quantcore.service import Service, ServiceContext
from quantcore.store.heatmap_inputs import write_taker_flow
from quantcore.store.instruments import write_instruments
from quantcore.store.market import write_candles, write_liquidations, write_snapshots

FLUSH_EVERY_S = 2.0
REBALANCE_EVERY_S = 15.0
UNIVERSE_EVERY_S = 3600.0
MAX_BUFFER = 200_000  # beyond this the oldest buffered rows are dropped, loudly
INPUTS_EVERY_S = 300.0  # account ratios (5-min periods) of the owned coins
TIERS_EVERY_S = 3600.0  # risk-limit tiers change rarely


class MarketCollector(Service):
    name: ClassVar[str] = "market_collector"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "universe, snapshots, 1-min OHLCV, liquidation events"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = self.ctx.settings
        self.source = s.data_source
        self.client = BybitMarketData(s.bybit_rest_url, s.bybit_rate_per_s, on_bad=self._reject)
        self.split = WorkSplit(self.ctx.redis, s.bus_namespace, self.name, self.ctx.instance)
        self.universe: list[str] = []
        self.streamed: list[str] = []
        self.stream: BybitPublicStream | None = None
        self.candles: list[Candle] = []
        self.liquidations: list[LiquidationEvent] = []
        self.trades: list[TakerFlow] = []
        # the heatmap model's inputs are gathered only when the model is the heatmap source
        self.collect_inputs = s.effective_heatmap_source == "estimate"
        self.repair_now = asyncio.Event()
        self.verified_until: dict[str, datetime] = {}  # per coin: candles complete up to
        self.repeats = RepeatLog(self.log, interval_s=60.0)

    async def _reject(self, kind: str, raw: str, reason: str) -> None:
        await self.ctx.bus.reject("bybit", kind, raw, reason)

    # --- universe -------------------------------------------------------------------------------

    async def discover(self, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=1.0, max_s=60.0, floor_s=0.5)
        while not stop.is_set():
            try:
                instruments = [i for i in await self.client.instruments() if i.quote_coin == "USDT"]
                # the grid the ranker plans signals on (store.instruments)
                async with self.ctx.pool.connection() as conn, conn.transaction():
                    await write_instruments(conn, instruments, self.source, datetime.now(UTC))
            except Exception as exc:
                self.status = "degraded"
                delay = backoff.delay()
                self.repeats.failure("discover", "universe discovery failed, retrying",
                                     error=str(exc)[:300], retry_in_s=round(delay, 2))  # fmt: skip
                await sleep_until(time.time() + delay, stop)
                continue
            backoff.reset()
            self.repeats.recovered("discover", "universe discovery works again")
            symbols = sorted(i.symbol for i in instruments if i.quote_coin == "USDT")
            if symbols != self.universe:
                await self.ctx.journal(
                    "universe.discovered", f"{len(symbols)} linear USDT perps", vertical="perps",
                    coins=len(symbols), source=self.source,
                )  # fmt: skip
            self.universe = symbols
            self.status_info["coins"] = len(symbols)
            self.status = "ok"
            return

    async def universe_loop(self, stop: asyncio.Event) -> None:
        while await sleep_until(time.time() + UNIVERSE_EVERY_S, stop):
            await self.discover(stop)

    # --- snapshots --------------------------------------------------------------------------------

    async def snapshot_once(self, cycle: int) -> int:
        interval = self.ctx.settings.snapshot_interval_s
        if not await self.split.claim("snapshot", cycle, ["all"], ttl_s=interval * 2):
            return 0  # another replica has this cycle
        tickers = await self.client.tickers()
        wanted = set(self.universe)
        tickers = [t for t in tickers if t.symbol in wanted]
        if not tickers:
            return 0
        at = datetime.fromtimestamp(cycle_start(cycle, interval), UTC)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await write_snapshots(conn, tickers, self.source, at=at)
        await self.ctx.bus.publish(STREAM_SNAPSHOTS, _snapshot_event(tickers, at, self.source))
        self.status_info["last_snapshot"] = at.isoformat()
        return len(tickers)

    async def snapshot_loop(self, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.snapshot_interval_s
        while not stop.is_set():
            cycle = cycle_of(interval)
            try:
                await self.snapshot_once(cycle)
            except Exception as exc:
                self.log.warning("snapshot failed; next cycle retries", error=str(exc)[:300])
            if not await sleep_until(cycle_start(cycle + 1, interval) + 1.0, stop):
                return

    # --- live stream --------------------------------------------------------------------------------

    async def _on_candle(self, candle: Candle) -> None:
        if candle.confirmed:
            self.candles.append(candle)

    async def _on_liquidation(self, event: LiquidationEvent) -> None:
        self.liquidations.append(event)

    async def _on_trades(self, flow: TakerFlow) -> None:
        self.trades.append(flow)

    async def rebalance(self) -> None:
        mine = await self.split.mine(self.universe)
        if sorted(mine) == self.streamed:
            return
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None
        self.streamed = sorted(mine)
        self.status_info["streamed_coins"] = len(mine)
        if mine:
            s = self.ctx.settings
            self.stream = BybitPublicStream(
                s.bybit_ws_public_url, mine, on_ticker=None, on_candle=self._on_candle,
                on_liquidation=self._on_liquidation, on_bad=self._reject,
                on_trades=self._on_trades if self.collect_inputs else None,
                symbols_per_connection=s.ws_symbols_per_connection,
                source="sim" if self.source == "sim" else "bybit",
            )  # fmt: skip
            await self.stream.start()
        self.log.info("stream rebalanced", coins=len(mine))
        self.repair_now.set()

    async def stream_loop(self, stop: asyncio.Event) -> None:
        try:
            was_connected = True
            next_rebalance = 0.0
            while not stop.is_set():
                if time.time() >= next_rebalance:
                    next_rebalance = time.time() + REBALANCE_EVERY_S
                    try:
                        await self.rebalance()
                    except Exception as exc:
                        self.log.warning("stream rebalance failed", error=str(exc)[:300])
                connected = self.stream is None or self.stream.connected
                if connected and not was_connected:
                    self.log.info("stream reconnected; repairing the gap")
                    self.repair_now.set()
                was_connected = connected
                self.status = "ok" if connected else "degraded"
                await sleep_until(time.time() + 1.0, stop)
        finally:
            if self.stream is not None:
                await self.stream.stop()

    async def flush(self) -> None:
        candles, self.candles = self.candles, []
        events, self.liquidations = self.liquidations, []
        trades, self.trades = self.trades, []
        if not candles and not events and not trades:
            return
        try:
            async with self.ctx.pool.connection() as conn, conn.transaction():
                if candles:
                    await write_candles(conn, candles, self.source)
                if events:
                    await write_liquidations(conn, events)
                if trades:
                    await write_taker_flow(conn, trades, self.source)
        except Exception as exc:
            # keep what we could not write: the next flush tries again
            self.candles = (candles + self.candles)[-MAX_BUFFER:]
            self.liquidations = (events + self.liquidations)[-MAX_BUFFER:]
            self.trades = (trades + self.trades)[-MAX_BUFFER:]
            self.log.warning("flush failed; rows kept for the next try", error=str(exc)[:300],
                             candles=len(candles), liquidations=len(events),
                             taker_minutes=len(trades))  # fmt: skip

    async def flush_loop(self, stop: asyncio.Event) -> None:
        while await sleep_until(time.time() + FLUSH_EVERY_S, stop):
            await self.flush()
        await self.flush()  # last rows before a clean stop

    # --- gap repair -------------------------------------------------------------------------------------

    async def repair_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.repair_now.clear()
            coins = list(self.streamed)
            if coins:
                started = time.monotonic()
                try:
                    written = await repair_gaps(
                        self.client,
                        self.ctx.pool,
                        coins,
                        self.ctx.settings.backfill_max_days,
                        self.source,
                        verified=self.verified_until,
                    )
                    total = sum(written.values())
                    self.status_info["last_repair_rows"] = total
                    if total:
                        self.log.info("gaps repaired", coins=len(coins), rows=total,
                                      seconds=round(time.monotonic() - started, 1))  # fmt: skip
                except Exception as exc:
                    self.log.warning("gap repair failed", error=str(exc)[:300])
                await self.repair_open_interest(coins)
            with contextlib.suppress(TimeoutError):
                waiter = asyncio.ensure_future(self.repair_now.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=self.ctx.settings.gap_repair_interval_s,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                waiter.cancel()
                stopper.cancel()

    async def repair_open_interest(self, coins: list[str]) -> None:
        """After the candles (its rows are priced from them): the open-interest history the
        snapshots lack (quantcore.collect.open_interest)."""
        started = time.monotonic()
        try:
            written = await repair_open_interest(
                self.client, self.ctx.pool, coins, self.ctx.settings.oi_backfill_hours,
                self.source,
            )  # fmt: skip
        except Exception as exc:
            self.log.warning("open-interest backfill failed", error=str(exc)[:300])
            return
        total = sum(written.values())
        self.status_info["last_oi_backfill_rows"] = total
        if total:
            self.log.info("open-interest history filled", coins=len(written), rows=total,
                          seconds=round(time.monotonic() - started, 1))  # fmt: skip

    # --- heatmap-model inputs ----------------------------------------------------------------------------

    async def collect_once(self, coins: list[str], tiers: bool) -> dict[str, int]:
        """Account ratios (and tiers) of `coins`; a coin the venue fails for is logged and
        skipped (what is stored stays in use), the rest go on."""
        totals = {"ratios": 0, "tiers": 0, "failed": 0, "empty": 0}
        now = datetime.now(UTC)
        for symbol in coins:
            async with self.ctx.pool.connection() as conn:
                got = await sync_collected(self.client, conn, symbol, now, self.source, tiers)
            totals["ratios"] += got.ratios
            totals["tiers"] += got.tiers
            if got.errors:
                totals["failed"] += 1
                self.log.warning("heatmap inputs: fetch failed, the stored ones stay in use",
                                 symbol=symbol, errors=list(got.errors))  # fmt: skip
            if got.empty:
                totals["empty"] += 1
                self.log.info("heatmap inputs: the venue returned nothing", symbol=symbol,
                              series=list(got.empty))  # fmt: skip
        return totals

    async def inputs_loop(self, stop: asyncio.Event) -> None:
        if not self.collect_inputs:
            return
        next_tiers = 0.0
        while not stop.is_set():
            coins = list(self.streamed)
            if coins:
                started = time.monotonic()
                tiers = time.time() >= next_tiers
                try:
                    totals = await self.collect_once(coins, tiers)
                    if tiers:
                        next_tiers = time.time() + TIERS_EVERY_S
                    self.status_info["last_inputs"] = totals
                    self.log.info("heatmap inputs collected", coins=len(coins), **totals,
                                  seconds=round(time.monotonic() - started, 1))  # fmt: skip
                except Exception as exc:
                    self.log.warning("heatmap inputs collection failed", error=str(exc)[:300])
            if not await sleep_until(time.time() + (INPUTS_EVERY_S if coins else 5.0), stop):
                return

    # ----------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.discover(stop)
            await asyncio.gather(
                self.snapshot_loop(stop),
                self.stream_loop(stop),
                self.flush_loop(stop),
                self.repair_loop(stop),
                self.universe_loop(stop),
                self.inputs_loop(stop),
            )
        finally:
            await self.client.aclose()


def _snapshot_event(tickers: list[Ticker], at: datetime, source: str) -> MarketSnapshotted:
    return MarketSnapshotted(
        time=at,
        source=source,
        symbols=[t.symbol for t in tickers],
        prices=[t.last_price for t in tickers],
        open_interest_values=[t.open_interest_value for t in tickers],
        turnovers_24h=[t.turnover_24h for t in tickers],
    )
