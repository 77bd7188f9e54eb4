"""End to end on the simulator's Polymarket (real httpx ↔ local server speaking the wire
formats ↔ real PostgreSQL): collect markets, books, candidates and wallet histories; hunt;
find sync clusters; fire oracle signals; make a hybrid signal from a planted perps spike."""

from __future__ import annotations

from datetime import timedelta

import httpx
from psycopg_pool import AsyncConnectionPool

from quantcore import dashboards as dash
from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.collect import poly as collect
from quantcore.config import Settings
from quantcore.scan import poly as scan
from tests.poly.conftest import NOW, PolySim

VERSION = "test+00000000"


async def collect_all(pool: AsyncConnectionPool, client: PolymarketClient) -> None:
    prog = await collect.collect_markets(pool, client, NOW)
    assert prog.done and prog.pages >= 1
    assert await collect.collect_books(pool, client) > 0
    assert await collect.discover_wallets(pool, client, leaderboard_pages=10) > 0
    assert await collect.sync_wallets(pool, client, NOW, batch=1_000, resync=timedelta(hours=6)) > 0
    await collect.collect_feed(pool, client, max_pages=5)


async def test_pipeline(
    fresh_pool: AsyncConnectionPool, poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
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

        # every panel of the Polymarket dashboard, as Grafana would send it, as its read-only role
        [board] = [
            d
            for d in dash.load_dashboards(dash.default_folder())
            if d.uid == "whalestack-polymarket"
        ]
        rng = dash.TimeRange.last(timedelta(days=2), now=NOW + timedelta(hours=1))
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
