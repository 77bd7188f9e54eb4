"""Bad input at the collector: an API answering HTML, an expired cursor, a market without token
ids, a wallet with no closed positions — clear errors, nothing garbage stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.adapters.polymarket.rest import PolymarketClient, PolymarketUrls
from quantcore.collect import poly as collect
from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.errors import TemporaryError
from quantcore.retry import RetryPolicy
from quantcore.scan import poly as scan
from quantcore.store import poly as store
from tests.adapters.conftest import BadLog
from tests.adapters.fake_venue import FakeVenue, Reply
from tests.poly.conftest import NOW, PolySim

RECORDED = Path("/work/shared/recorded/nautilus-polymarket")


async def count(pool: AsyncConnectionPool, table: str) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()
    return int(row[0]) if row else 0


async def faults(sim: PolySim, **body: int) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(sim.url + "/sim/poly/faults", json=body)).raise_for_status()


async def test_html_reply_stores_nothing(
    fresh_pool: AsyncConnectionPool, poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
    await faults(poly_sim, html=10)
    with pytest.raises(TemporaryError, match="reply is HTML, not JSON"):
        await collect.collect_markets(fresh_pool, poly_client, NOW)
    assert await count(fresh_pool, "poly_markets") == 0
    assert (await store.progress(await fresh_pool.getconn(), "markets")).pages == 0


async def test_expired_cursor_restarts_the_walk_without_duplicates(
    fresh_pool: AsyncConnectionPool, poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
    bot = sorted(w for w, k in poly_sim.world.kinds.items() if k == "bot")[0]
    expected = sum(1 for t in poly_sim.world.trades if t.wallet == bot)
    assert expected > 200  # several pages of 100

    async def fetch(cursor: str | None):  # type: ignore[no-untyped-def]
        return await poly_client.trades_page(cursor, user=bot, limit=100)

    async def write(conn, items):  # type: ignore[no-untyped-def]
        return await store.write_trades(conn, items)

    first = await collect.walk_resumable(fresh_pool, f"trades:{bot}", fetch, write, max_pages=1)
    assert not first.done and first.cursor
    await faults(poly_sim, expire_cursors=1)
    prog = await collect.walk_resumable(
        fresh_pool, f"trades:{bot}", fetch, write
    )  # resumes, cursor expired
    assert prog.done
    assert await count(fresh_pool, "poly_trades") == expected


async def test_market_without_token_ids_is_dead_lettered_not_stored(
    fresh_pool: AsyncConnectionPool, fake: FakeVenue, bad: BadLog
) -> None:
    good = json.loads((RECORDED / "crates/gamma_market.json").read_text())
    broken = {**good, "id": "9", "conditionId": "0x" + "ef" * 32, "clobTokenIds": None}
    fake.routes["/gamma/markets/keyset"] = lambda q: Reply(body={"markets": [good, broken]})
    client = PolymarketClient(
        PolymarketUrls.single(fake.url), on_bad=bad, retry_policy=RetryPolicy(attempts=1)
    )
    prog = await collect.collect_markets(fresh_pool, client, NOW)
    await client.aclose()
    assert prog.done and prog.rows == 1
    async with fresh_pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT market_id, vertical, source FROM poly_markets")
        ).fetchall()
    assert rows == [("1557558", "poly", "polymarket")]
    assert bad.kinds() == ["poly_market"] and "no token ids" in bad.calls[0][2]


async def test_wallet_with_no_closed_positions(
    fresh_pool: AsyncConnectionPool, poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
    nobody = "0x" + "0" * 40  # the API knows nothing about it
    async with fresh_pool.connection() as conn:
        await store.add_wallets(conn, [(nobody, None, None)], "test", "sim")
    assert await collect.sync_wallet(fresh_pool, poly_client, nobody, NOW) == (0, 0)
    # a wallet whose only position is still open: stored, scored "unproven", ROI unknown
    target = next(m for m in poly_sim.world.markets if m.open_target)
    fresh = "0x" + "1" * 40
    fill = next(t for t in poly_sim.world.trades if t.condition_id == target.condition_id)
    async with fresh_pool.connection() as conn:
        await store.write_trades(conn, [fill.model_copy(update={"wallet": fresh})])
        await store.upsert_positions(conn, [
            p.model_copy(update={"wallet": fresh}) for p in poly_sim.world.positions(fill.wallet)
            if p.condition_id == target.condition_id
        ], NOW)  # fmt: skip
        result = await scan.hunt(conn, NOW, scan.hunter_params(Settings()), "test+0")
        stored = await (
            await conn.execute(
                "SELECT wallet, label, roi, closed_positions FROM poly_wallet_scores WHERE wallet = %s",
                (fresh,),
            )
        ).fetchall()
    assert nobody not in result.wallets  # nothing to score: no row, no invented zero
    assert stored == [(fresh, "unproven", None, 0)]


async def test_backfill_by_hand_resumes_and_fills(
    fresh: Any,
    poly_sim: PolySim,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from urllib.parse import urlparse

    from svc_poly_collector import backfill

    for k, v in fresh.env.items():
        monkeypatch.setenv(k, v)
    url = urlparse(poly_sim.url)
    monkeypatch.setenv("SIM_HOST", url.hostname or "127.0.0.1")
    monkeypatch.setenv("SIM_PORT", str(url.port))
    await backfill.main(restart=False, wallets=5)
    out = capsys.readouterr().out
    assert f"markets: {len(poly_sim.world.markets)} rows in 1 pages, done=True" in out
    async with await psycopg.AsyncConnection.connect(conninfo(fresh.settings)) as conn:
        synced = await (
            await conn.execute(
                "SELECT count(*) FROM poly_wallets WHERE history_synced_at IS NOT NULL"
            )
        ).fetchone()
    assert synced == (5,)


async def test_a_cursor_the_api_ignores_ends_the_walk(
    fresh_pool: AsyncConnectionPool, fake: FakeVenue
) -> None:
    good = json.loads((RECORDED / "crates/gamma_market.json").read_text())
    fake.routes["/gamma/markets/keyset"] = lambda q: Reply(
        body={"markets": [good], "next_cursor": "same"}
    )
    client = PolymarketClient(PolymarketUrls.single(fake.url), retry_policy=RetryPolicy(attempts=1))
    prog = await collect.collect_markets(fresh_pool, client, NOW)
    await client.aclose()
    assert prog.done and prog.pages == 2  # first page, then the page whose cursor did not move
    assert await count(fresh_pool, "poly_markets") == 1
