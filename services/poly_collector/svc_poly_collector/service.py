"""Polymarket collector: every POLY_COLLECT_INTERVAL_S the books of open markets, the trade
feed, candidate wallets (ALL-time leaderboard + holders of open markets) and a batch of wallet
histories; every POLY_MARKETS_INTERVAL_S a full Gamma market crawl (resumable). Reads the real
APIs, or the simulator's copies when DATA_SOURCE=sim. Bad items are dead-lettered."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.collect import poly as collect
from quantcore.scan.loop import every
from quantcore.service import Service, ServiceContext


class PolyCollector(Service):
    name: ClassVar[str] = "poly_collector"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "Polymarket markets, books, trade feed, wallets"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        sim = s.poly_sim
        self.client = PolymarketClient(
            PolymarketUrls.single(s.sim_http_url) if sim else PolymarketUrls(),
            source="sim" if sim else "polymarket", on_bad=self._reject,
            rate_scale=1.0 if sim else s.poly_rate_scale,
        )  # fmt: skip
        self._markets_at = 0.0

    async def _reject(self, kind: str, raw: str, reason: str) -> None:
        await self.ctx.bus.reject(self.client.source, kind, raw, reason)

    async def cycle(self, _cycle: int) -> None:
        s = self.ctx.settings
        pool = self.ctx.pool
        now = datetime.now(UTC)
        if time.monotonic() - self._markets_at >= s.poly_markets_interval_s or not self._markets_at:
            prog = await collect.collect_markets(pool, self.client, now, restart=True)
            self._markets_at = time.monotonic()
            self.status_info.update(markets_pages=prog.pages, markets_rows=prog.rows)
        books = await collect.collect_books(pool, self.client)
        fills = await collect.collect_feed(pool, self.client)
        found = await collect.discover_wallets(pool, self.client)
        synced = await collect.sync_wallets(
            pool,
            self.client,
            now,
            s.poly_wallet_sync_batch,
            timedelta(hours=s.poly_wallet_resync_h),
        )
        self.status_info.update(
            books=books, new_fills=fills, candidates=found, wallets_synced=synced
        )

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await every(
                self.ctx.settings.poly_collect_interval_s,
                stop,
                self.cycle,
                self.log,
                "poly collect",
                delay_s=0.0,
            )
        finally:
            await self.client.aclose()
