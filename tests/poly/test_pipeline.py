"""End to end on the simulator's Polymarket (real httpx ↔ local server speaking the wire
formats ↔ real PostgreSQL): collect markets, books, candidates and wallet histories; hunt;
find sync clusters; fire oracle signals; make a hybrid signal from a planted perps spike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore import dashboards as dash
from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.collect import poly as collect
from quantcore.config import Settings
from quantcore.model.events import PolySignalFired
from quantcore.scan import poly as scan
from quantcore.testing import Sandbox
from tests.poly.conftest import NOW, PolySim
from tests.poly_trader.test_service import trader

VERSION = "test+00000000"


async def collect_all(pool: AsyncConnectionPool, client: PolymarketClient) -> None:
    prog = await collect.collect_markets(pool, client, NOW)
    assert prog.done and prog.pages >= 1
    assert await collect.collect_books(pool, client) > 0
    assert await collect.discover_wallets(pool, client, leaderboard_pages=10) > 0
    assert await collect.sync_wallets(pool, client, NOW, batch=1_000, resync=timedelta(hours=6)) > 0
    await collect.collect_feed(pool, client, max_pages=5)


async def test_pipeline(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient,
) -> None:  # fmt: skip
    s = Settings()
    await collect_all(fresh_pool, poly_client)
    async with fresh_pool.connection() as conn:
        n_markets = await (
            await conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE version = 'v2') FROM poly_markets"
            )
        ).fetchone()
        assert (
            n_markets is not None
            and n_markets[0] == len(poly_sim.world.markets)
            and n_markets[1] > 0
        )
        trades = await (await conn.execute("SELECT count(*) FROM poly_trades")).fetchone()
        assert trades is not None and trades[0] > 0.9 * len(poly_sim.world.trades)
        vert = await (
            await conn.execute(
                "SELECT DISTINCT vertical, source FROM poly_trades UNION SELECT DISTINCT vertical, source FROM poly_positions"
            )
        ).fetchall()
        assert set(vert) == {("poly", "sim")}

        # ground truth from the simulator's test hook (the hunter never reads it)
        async with httpx.AsyncClient() as http:
            truth = (await http.get(poly_sim.url + "/sim/poly/truth")).json()
        kinds: dict[str, str] = truth["kinds"]

        result = await scan.hunt(conn, NOW, scan.hunter_params(s), VERSION)
        top = result.ranked_smart()[:10]
        assert len(top) == 10
        precision = sum(kinds[w] == "informed" for w in top) / 10
        assert precision >= 0.8, [kinds[w] for w in top]
        score = dict(zip(result.wallets, result.scores.score, strict=True))
        tenth = min(score[w] for w in top)
        lucky = [w for w, k in kinds.items() if k == "lucky" and w in score]
        assert lucky and all(score[w] < tenth for w in lucky)
        labels = dict(zip(result.wallets, result.scores.label, strict=True))
        assert {labels[w] for w, k in kinds.items() if k == "market_maker" and w in labels} == {
            "market_maker"
        }
        assert all(
            labels[w] in ("bot", "unproven") for w, k in kinds.items() if k == "bot" and w in labels
        )

        clusters = await scan.find_clusters(
            conn, NOW, scan.cluster_params(s), timedelta(days=30), VERSION
        )
        planted = [set(c) for c in truth["clusters"]]
        assert any(set(c.members) <= group for c in clusters for group in planted)
        assert all(c.density > 0.5 for c in clusters)

        assert await scan.link_markets(conn) >= 1
        fired = await scan.run_oracle(conn, NOW, scan.oracle_params(s), 0.0, VERSION)
        assert fired and all(f.criteria_met >= 5 and f.edge > 0 for f in fired)
        row = await (
            await conn.execute(
                "SELECT criteria_met, checklist, inputs, suggested_size_usd FROM poly_signals ORDER BY time LIMIT 1"
            )
        ).fetchone()
        assert row is not None and row[0] >= 5 and len(row[1]) == 7 and "smart_wallets" in row[2]
        assert 0 < row[3] <= s.poly_max_signal_usd

        # a planted perps spike on the coin a signalled market is about → hybrid
        await conn.execute(
            """INSERT INTO oi_volume_spikes (time, symbol, mode, is_oi_spike, is_volume_spike, scanner, scanner_version)
               VALUES (%s, 'BTCUSDT', 'fixed', true, false, 'spike_scanner', 'test')""",
            (NOW - timedelta(minutes=5),),
        )
        hybrid = await scan.hybrids(conn, NOW, timedelta(minutes=60), VERSION)
        assert any(h.symbol == "BTCUSDT" and "oi_spike" in h.reasons for h in hybrid)
        # nothing without a spike: an unrelated symbol's spike does not make hybrids
        n = await (
            await conn.execute("SELECT count(*) FROM hybrid_signals WHERE symbol <> 'BTCUSDT'")
        ).fetchone()
        assert n is not None and n[0] == 0

    # the copy trader on the fired signals (real trader, paper venue on the simulator's CLOB):
    # entries under the caps, one market resolves (a closed trade, wallet and scanner records),
    # the others step out as their end nears (open positions after exit steps)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1",
               poly_signal_max_age_s=1e9, poly_exit_min_edge=-1.0)  # fmt: skip
    for f in fired:
        await t.decide(PolySignalFired(
            time=f.time, condition_id=f.condition_id, token_id=f.token_id, question=f.question,
            outcome=f.outcome, market_price=f.market_price, implied_prob=f.implied_prob,
            edge=f.edge, criteria_met=f.criteria_met, criteria_total=len(f.checklist),
            passed=sorted(k for k, c in f.checklist.items() if c["ok"]),
            smart_wallets=len(f.smart_wallets), suggested_size_usd=f.suggested_size_usd,
            scanner="poly_scanner", scanner_version=VERSION,
        ))  # fmt: skip
    held = await t.venue.holdings()
    assert len(held) >= 2, [f.question for f in fired]
    async with fresh_pool.connection() as conn:
        await conn.execute(
            "UPDATE poly_markets SET closed = true, "
            "resolved_outcome = outcomes[array_position(token_ids, %s)] WHERE condition_id = %s",
            (held[0].token_id, held[0].condition_id),
        )
        await conn.execute("UPDATE poly_markets SET end_date = now() + interval '1 hour'")
    t.lease.valid_until = float("inf")
    await t.manage()
    async with fresh_pool.connection() as conn:
        by_status = dict(await (await conn.execute(
            "SELECT status, count(*) FROM trades WHERE vertical = 'poly' GROUP BY status")).fetchall())  # fmt: skip
        assert by_status.get("closed") == 1 and by_status.get("open", 0) >= 1, by_status

        # every panel of the Polymarket dashboard, as Grafana would send it, as its read-only role
        [board] = [
            d
            for d in dash.load_dashboards(dash.default_folder())
            if d.uid == "whalestack-polymarket"
        ]
        # from the simulated world's time to the copy trader's (it trades now)
        rng = dash.TimeRange(NOW - timedelta(days=2), datetime.now(UTC) + timedelta(hours=1))
        empty = []
        await conn.execute("SET ROLE grafana_reader")
        for q in board.queries:
            sql = dash.render(q.raw_sql, {}, rng, timescaledb=False, max_points=q.max_points)
            cur = await conn.execute(sql)  # type: ignore[arg-type]
            assert cur.description is not None
            assert (
                dash.result_problems(q, [(c.name, c.type_code) for c in cur.description]) == []
            ), q.name
            if not await cur.fetchall():
                empty.append(q.title)
        await conn.execute("RESET ROLE")
        assert empty == []
