"""Polymarket copy-trading rows for the dashboard tests, made by the REAL copy trader: markets
and books collected from the simulator's Polymarket (the fleet's simulator), poly signals on a
few open outcomes handed to `PolyTrader.decide`, one market resolved and one management pass
(redemption, exit steps, cap check, equity). Everything the copy panels read — orders and
trades with vertical 'poly', exit steps, exposure vs cap, poly equity, wallet and scanner
records — is then written by the service's own code. The signals are synthetic (no scanner
runs here); their smart wallets are planted in poly_signals as the scanner would store them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.bus import Bus
from quantcore.collect import poly as collect
from quantcore.db import conninfo
from quantcore.model.events import PolySignalFired
from quantcore.service import ServiceContext
from quantcore.testing import Sandbox
from svc_poly_trader.service import PolyTrader

WALLETS = ["0x" + c * 40 for c in "abc"]


@dataclass(frozen=True)
class SeededPoly:
    trades: int
    closed: int
    open: int
    exposure_rows: int


async def seed_poly_copy(box: Sandbox, sim_url: str, n: int = 3) -> SeededPoly:
    host, port = sim_url.removeprefix("http://").rsplit(":", 1)
    settings = box.settings.model_copy(update={
        "service_instance": "pt-seed", "data_source": "sim", "sim_host": host, "sim_port": int(port),
        "poly_paper_equity_usd": 1000.0, "poly_risk_cap": 0.15, "poly_market_cap": 0.05,
        "poly_fee_rate_bps": 300.0, "poly_exit_min_edge": -1.0,
    })  # fmt: skip
    pool = AsyncConnectionPool(conninfo(settings), min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    redis = Redis.from_url(settings.redis_url())
    client = PolymarketClient(PolymarketUrls.single(sim_url), source="sim", rate_scale=50.0)
    try:
        now = datetime.now(UTC)
        await collect.collect_markets(pool, client, now)
        await collect.collect_books(pool, client)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT condition_id, unnest(token_ids) FROM poly_markets WHERE NOT closed "
                "ORDER BY 1, 2"
            )
            tokens = await cur.fetchall()
        picks: list[tuple[str, str, float]] = []
        for cond, token in tokens:
            if any(cond == c for c, _, _ in picks):
                continue
            book = await client.book(token)
            if book.best_ask is not None and 0.05 < book.best_ask < 0.85:
                picks.append((cond, token, book.best_ask))
            if len(picks) == n:
                break
        bus = Bus(redis, settings.bus_namespace, source="poly_trader@seed")
        ctx = ServiceContext(
            "poly_trader", "poly_copy", PolyTrader.version, settings, pool, redis, bus
        )
        trader = PolyTrader(ctx)
        for k, (cond, token, ask) in enumerate(picks):
            sig = PolySignalFired(
                time=datetime.now(UTC), condition_id=cond, token_id=token, question="Will it?",
                outcome="Yes", market_price=ask, implied_prob=min(ask + 0.1, 0.99), edge=0.08,
                criteria_met=6, criteria_total=7, passed=["smart_wallets_same_side"],
                smart_wallets=2, suggested_size_usd=40.0, scanner="poly_scanner",
                scanner_version="seed",
            )  # fmt: skip
            async with pool.connection() as conn:
                await conn.execute(
                    """INSERT INTO poly_signals (time, condition_id, token_id, outcome, question,
                       market_price, implied_prob, edge, criteria_met, criteria_total, checklist,
                       smart_wallets, suggested_size_usd, scanner, scanner_version, source)
                       VALUES (%s, %s, %s, 'Yes', 'Will it?', %s, %s, 0.08, 6, 7, '{}', %s, 40,
                       'poly_scanner', 'seed', 'sim')""",
                    (sig.time, cond, token, ask, sig.implied_prob, WALLETS[k % 3 : k % 3 + 2]),
                )
            await trader.decide(sig)
        held = await trader.venue.holdings()
        if held:  # the first position's market resolves in its favour: a closed copy trade
            async with pool.connection() as conn:
                await conn.execute(
                    "UPDATE poly_markets SET closed = true, resolved_outcome = "
                    "outcomes[array_position(token_ids, %s)] WHERE condition_id = %s",
                    (held[0].token_id, held[0].condition_id),
                )
        trader.lease.valid_until = float("inf")  # this one leads
        await trader.manage()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'closed'), "
                "count(*) FILTER (WHERE status = 'open'), "
                "(SELECT count(*) FROM poly_copy_exposure) FROM trades WHERE vertical = 'poly'"
            )
            row = await cur.fetchone()
        assert row is not None
        await trader.venue.close()
        return SeededPoly(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    finally:
        await client.aclose()
        await redis.aclose()
        await pool.close()
