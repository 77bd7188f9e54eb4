"""Cluster scanner (clusters + history).

- Every CLUSTER_SCAN_INTERVAL_S, for the coins this replica owns (per-cycle claims, orphans
  swept): the latest heatmap of each coin × timeframe not clustered yet is merged into
  clusters (quantcore.math.clusters) → `liquidation_clusters`; each timeframe's target (the
  largest cluster on its bias side) is sampled into `cluster_targets` once per
  PATTERN_SAMPLE_INTERVAL_MIN; the coin's typical cluster size → `coin_thresholds`.
- Every PATTERN_UPDATE_INTERVAL_S: past targets older than the horizon are judged against the
  1-min candles (reached or not, and when), then `coin_liquidation_patterns` gets per coin ×
  timeframe the success rate, time-to-target and wick stats (quantcore.math.wicks).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import numpy as np

from quantcore.collect.cycles import cycle_start
from quantcore.model.market import TIMEFRAMES
from quantcore.partition import WorkSplit, split_work
from quantcore.scan import clusters, patterns
from quantcore.scan.loop import every
from quantcore.scan.registered import RegisteredScanner
from quantcore.service import ServiceContext
from quantcore.store import clusters as store
from quantcore.store.levels import heatmap_symbols, latest_snapshots, read_levels_parallel
from quantcore.store.series import latest_prices, price_array

UNIVERSE_WINDOW = timedelta(hours=2)  # coins whose heatmaps were refreshed this recently
READ_SLICES = 4  # levels are read in up to this many concurrent queries (~50 coins each at least)
WRITE_SLICES = 2  # a scan's rows are written in up to this many concurrent transactions


class ClusterScanner(RegisteredScanner):
    name: ClassVar[str] = "cluster_scanner"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "liquidation clusters, typical size, wick stats, success rates"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.split = WorkSplit(ctx.redis, s.bus_namespace, self.name, ctx.instance)

    def registry_params(self) -> dict[str, Any]:
        s = self.ctx.settings
        return {
            "merge_pct": s.cluster_merge_pct,
            "typical_lookback_h": s.typical_cluster_lookback_h,
            "typical_min_samples": s.typical_cluster_min_samples,
            "sample_interval_min": s.pattern_sample_interval_min,
            "horizon_h": s.pattern_horizon_h, "lookback_d": s.pattern_lookback_d,
            "wick_candle_min": s.wick_candle_min, "wick_window_max_d": s.wick_window_max_d,
        }  # fmt: skip

    async def universe(self, at: datetime) -> list[str]:
        async with self.ctx.pool.connection() as conn:
            return await heatmap_symbols(conn, at - UNIVERSE_WINDOW)

    # --- clusters ---------------------------------------------------------------------------------

    def typical(self, scan: clusters.ClusterScan, history: dict[str, store.TypicalHistory]
                ) -> tuple[np.ndarray[Any, np.dtype[np.float64]], dict[str, tuple[float, str, int]]]:  # fmt: skip
        """Median of the coin's past largest clusters, or — with too little history — the
        median over timeframes of the current targets."""
        need = self.ctx.settings.typical_cluster_min_samples
        snap = scan.snapshot_typical()
        values = np.full(len(scan.levels.symbols), np.nan)
        record: dict[str, tuple[float, str, int]] = {}
        for i, sym in enumerate(scan.levels.symbols):
            h = history.get(sym)
            if h is not None and h.samples >= need and h.median_usd > 0:
                values[i] = h.median_usd
                record[sym] = (h.median_usd, "history", h.samples)
            elif np.isfinite(snap[i]) and snap[i] > 0:
                values[i] = snap[i]
                record[sym] = (float(snap[i]), "snapshot", h.samples if h else 0)
        return values, record

    async def cluster_coins(self, symbols: list[str], at: datetime) -> dict[str, int]:
        s = self.ctx.settings
        async with self.ctx.pool.connection() as conn:
            snaps = await latest_snapshots(conn, symbols, unclustered_only=True)
        if not snaps:
            return {"coins": 0, "clusters": 0, "targets": 0}
        coins = sorted({sn.symbol for sn in snaps})
        slices = max(1, min(READ_SLICES, s.db_pool_max, len(coins) // 50 + 1))
        levels = await read_levels_parallel(self.ctx.pool, coins, snaps, slices)
        async with self.ctx.pool.connection() as conn:
            prices = await latest_prices(conn, coins)
            history = await store.typical_history(
                conn, coins, at - timedelta(hours=s.typical_cluster_lookback_h)
            )
        scan = clusters.scan(levels, price_array(prices, coins, at), s.cluster_merge_pct)
        typical, record = self.typical(scan, history)
        values = clusters.cluster_values(scan, typical)
        sample_s = s.pattern_sample_interval_min * 60
        bucket = datetime.fromtimestamp(at.timestamp() // sample_s * sample_s, UTC)
        targets = clusters.target_rows(scan, bucket, at, self.name, self.scanner_version)
        # written in up to WRITE_SLICES concurrent transactions, each complete for its coins
        # (clusters, targets, typical size): a failed slice leaves its coins unclustered, so
        # the next cycle scans them again; the server indexes the rows on more than one core
        n_parts = max(1, min(WRITE_SLICES, s.db_pool_max, len(coins) // 100 + 1))
        parts = [set(coins[k::n_parts]) for k in range(n_parts)]

        async def write(part: set[str]) -> tuple[int, int]:
            async with self.ctx.pool.connection() as conn, conn.transaction():
                n = await store.insert_clusters(
                    conn, values.of_symbols(part) if n_parts > 1 else values, at, self.name,
                    self.scanner_version,
                )  # fmt: skip
                written = await store.write_targets(conn, [t for t in targets if t[1] in part])
                await store.upsert_typical(
                    conn, {k: v for k, v in record.items() if k in part}, self.name,
                    self.scanner_version,
                )  # fmt: skip
            return n, written

        done = await asyncio.gather(*(write(part) for part in parts))
        return {
            "coins": len(coins), "clusters": sum(d[0] for d in done),
            "targets": sum(d[1] for d in done),
        }  # fmt: skip

    async def cluster_cycle(self, cycle: int, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.cluster_scan_interval_s
        at = datetime.fromtimestamp(cycle_start(cycle, interval), UTC)
        done = await split_work(
            self.split, "clusters", cycle, interval, await self.universe(at), stop,
            lambda coins: self.cluster_coins(coins, at),
        )  # fmt: skip
        self.status_info.update(
            last_cycle=cycle, last_cycle_s=round(done.seconds, 3), **done.totals
        )

    # --- patterns (history) ---------------------------------------------------------------------------

    async def pattern_coins(self, symbols: list[str], at: datetime) -> dict[str, int]:
        s = self.ctx.settings
        horizon = timedelta(hours=s.pattern_horizon_h)
        since = at - timedelta(days=s.pattern_lookback_d)
        max_window = timedelta(days=s.wick_window_max_d)
        async with self.ctx.pool.connection() as conn:
            async with conn.transaction():
                judged = await store.judge_targets(conn, symbols, horizon, since, at)
            outcomes = await store.outcome_stats(conn, symbols, since)
            candles = await store.wick_candles(conn, symbols, at - max_window, s.wick_candle_min)
        wicks = patterns.wick_windows(candles, symbols, TIMEFRAMES, at, max_window)
        rows = patterns.pattern_rows(wicks, outcomes, horizon, at, self.name, self.scanner_version)
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await store.upsert_patterns(conn, rows)
        return {"pattern_coins": len(symbols), "judged": judged, "pattern_rows": len(rows)}

    async def pattern_cycle(self, cycle: int, stop: asyncio.Event) -> None:
        interval = self.ctx.settings.pattern_update_interval_s
        at = datetime.fromtimestamp(time.time(), UTC)
        done = await split_work(
            self.split, "patterns", cycle, interval, await self.universe(at), stop,
            lambda coins: self.pattern_coins(coins, at),
        )  # fmt: skip
        self.status_info.update(
            last_pattern_cycle=cycle, last_pattern_s=round(done.seconds, 3), **done.totals
        )
        if done.coins:
            self.log.info("patterns updated", **done.totals, seconds=round(done.seconds, 2))

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        self.log.info("cluster scanner registered", scanner_version=self.scanner_version)
        s = self.ctx.settings
        await asyncio.gather(
            every(s.cluster_scan_interval_s, stop, lambda c: self.cluster_cycle(c, stop),
                  self.log, "cluster scan"),
            every(s.pattern_update_interval_s, stop, lambda c: self.pattern_cycle(c, stop),
                  self.log, "pattern update", delay_s=0.0),
        )  # fmt: skip
