"""Polymarket scanner: every POLY_SCAN_INTERVAL_S the wallet hunter (all wallets scored from
the database), sync clusters, market → perp link suggestions, the signal oracle and hybrid
signals. A registered, versioned scanner (vertical 'poly'): every row it writes carries its
version."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from quantcore.model.events import STREAM_POLY_SIGNALS, HybridSignalFired, PolySignalFired
from quantcore.scan import poly as scan
from quantcore.scan.loop import every
from quantcore.scan.registered import RegisteredScanner
from quantcore.store.scanners import register


class PolyScanner(RegisteredScanner):
    name: ClassVar[str] = "poly_scanner"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "Polymarket smart wallets, sync clusters, signal oracle, hybrids"

    def registry_params(self) -> dict[str, Any]:
        return scan.registry_params(self.ctx.settings)

    async def register(self) -> None:
        async with self.ctx.pool.connection() as conn:
            self.scanner_version = await register(
                conn,
                self.name,
                self.version,
                self.registry_params(),
                self.description,
                vertical="poly",
            )
        self.status_info["scanner_version"] = self.scanner_version

    async def cycle(self, _cycle: int) -> None:
        s = self.ctx.settings
        now = datetime.now(UTC)
        v = self.scanner_version
        async with self.ctx.pool.connection() as conn:
            hunt = await scan.hunt(conn, now, scan.hunter_params(s), v)
            clusters = await scan.find_clusters(
                conn, now, scan.cluster_params(s), timedelta(days=s.poly_window_days), v
            )
            await scan.link_markets(conn)
            fired = await scan.run_oracle(
                conn, now, scan.oracle_params(s), s.poly_fee_rate_bps, v, s.poly_fee_exponent
            )
            hybrid = await scan.hybrids(conn, now, timedelta(minutes=s.poly_hybrid_window_min), v)
        # rows first, then the events (the broadcaster de-duplicates a re-published one)
        await self.publish(fired, hybrid)
        self.status_info.update(
            wallets=len(hunt.wallets), smart=len(hunt.ranked_smart()), clusters=len(clusters),
            signals=len(fired), hybrids=len(hybrid),
        )  # fmt: skip

    async def publish(self, fired: list[scan.FiredSignal], hybrid: list[scan.HybridFound]) -> None:
        v = self.scanner_version
        events = [
            PolySignalFired(
                time=f.time, condition_id=f.condition_id, token_id=f.token_id, question=f.question,
                outcome=f.outcome, market_price=f.market_price, implied_prob=f.implied_prob, edge=f.edge,
                criteria_met=f.criteria_met, criteria_total=len(f.checklist),
                passed=sorted(k for k, c in f.checklist.items() if c["ok"]), smart_wallets=len(f.smart_wallets),
                suggested_size_usd=f.suggested_size_usd, scanner=self.name, scanner_version=v,
            )
            for f in fired
        ] + [
            HybridSignalFired(
                time=datetime.now(UTC), signal_time=h.signal.time, condition_id=h.signal.condition_id,
                token_id=h.signal.token_id, question=h.signal.question, outcome=h.signal.outcome,
                symbol=h.symbol, reasons=h.reasons, perp_rank=h.perp_rank, edge=h.signal.edge,
                criteria_met=h.signal.criteria_met, criteria_total=h.signal.criteria_total,
                scanner=self.name, scanner_version=v,
            )
            for h in hybrid
        ]  # fmt: skip
        if events:
            await self.ctx.bus.publish_many(STREAM_POLY_SIGNALS, events)

    async def run(self, stop: asyncio.Event) -> None:
        await self.register()
        self.log.info("poly scanner registered", scanner_version=self.scanner_version)
        await every(
            self.ctx.settings.poly_scan_interval_s,
            stop,
            self.cycle,
            self.log,
            "poly scan",
            delay_s=0.0,
        )
