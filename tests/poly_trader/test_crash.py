"""SIGKILL poly_trader (a real process) right after the paper venue accepted an order and before
its answer was recorded: after a restart there is one order at the venue, one set of fills, one
decision — settled from the venue — and the signal is acked."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.bus import Bus
from quantcore.collect import poly as collect
from quantcore.model.events import STREAM_POLY_SIGNALS
from quantcore.testing import Sandbox
from tests.conftest import ROOT, aeventually
from tests.poly.conftest import NOW, PolySim
from tests.poly_trader.test_service import open_tokens
from tests.poly_trader.test_service import signal as poly_signal


def start(box: Sandbox, sim: PolySim, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, **box.env, "DATA_SOURCE": "sim", "SIM_HOST": "127.0.0.1",
            "SIM_PORT": sim.url.rsplit(":", 1)[1], "HEARTBEAT_INTERVAL_S": "1",
            "POLY_TRADER_INTERVAL_S": "3600", **env}  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "quantcore.cli", "run", "poly_trader"],
                                stdout=out, stderr=subprocess.STDOUT, env=full, cwd=ROOT)  # fmt: skip


async def scalar(pool: AsyncConnectionPool, sql: str) -> object:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql)).fetchone()
    return None if row is None else row[0]


async def test_sigkill_after_the_venue_accepted(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, tmp_path: Path,
) -> None:  # fmt: skip
    await collect.collect_markets(fresh_pool, poly_client, NOW)
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="poly_scanner@test")
    await bus.publish(STREAM_POLY_SIGNALS, poly_signal(cond, token, ask))
    log = tmp_path / "poly_trader.log"

    proc = start(fresh, poly_sim, log, POLY_TRADER_FAULT="kill_after_place")
    code = await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=90)
    assert code == -signal.SIGKILL, log.read_text()[-2000:]
    assert await scalar(fresh_pool, "SELECT count(*) FROM poly_paper_orders") == 1
    assert await scalar(fresh_pool, "SELECT order_status FROM poly_copy_decisions") is None
    key = bus.key(STREAM_POLY_SIGNALS)
    assert (await fresh_redis.xpending(key, "poly_trader"))["pending"] == 1  # never acked

    proc = start(fresh, poly_sim, log)
    try:
        await aeventually(
            lambda: scalar(fresh_pool, "SELECT order_status FROM poly_copy_decisions"), timeout=60
        )
        await aeventually(lambda: _acked(fresh_redis, key), timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=30)
    # the entry: one order, one set of fills (the fills table has no key on order_id); the
    # restarted leader may also step out (the simulated markets end before today): sells only
    sides = await rows(fresh_pool, "SELECT side, count(*) FROM poly_paper_orders GROUP BY side")
    assert dict(sides).get("buy") == 1, sides
    assert await scalar(fresh_pool, "SELECT count(*) FROM poly_copy_decisions") == 1
    filled = await scalar(fresh_pool, "SELECT filled FROM poly_paper_orders WHERE side = 'buy'")
    at_venue = await scalar(
        fresh_pool,
        "SELECT sum(f.shares) FROM poly_paper_fills f JOIN poly_paper_orders o USING (order_id) "
        "WHERE o.side = 'buy'",
    )
    assert filled == at_venue and filled
    assert await scalar(fresh_pool, "SELECT filled FROM poly_copy_decisions") == filled
    # the trade log: the entry written before the venue call ('submitting', trade 'pending')
    # was brought to the venue's answer after the restart — one buy order row holding the
    # venue's fill, one trade holding those shares (not a pending or a second one)
    buys = await rows(
        fresh_pool,
        "SELECT o.order_link_id, o.status, o.filled_qty, t.qty, t.status, t.vertical "
        "FROM orders o JOIN trades t USING (trade_id) WHERE o.side = 'buy'",
    )
    venue_id = await scalar(fresh_pool, "SELECT order_id FROM poly_paper_orders WHERE side = 'buy'")
    assert len(buys) == 1, buys
    [(link, status, order_filled, qty, trade_status, vertical)] = buys
    assert link == venue_id and status != "submitting" and order_filled == filled == qty
    assert trade_status in ("open", "closed") and vertical == "poly"
    assert await scalar(fresh_pool, "SELECT count(*) FROM trades WHERE vertical = 'poly'") == 1


async def rows(pool: AsyncConnectionPool, sql: str) -> list[tuple[object, ...]]:
    async with pool.connection() as conn:
        return await (await conn.execute(sql)).fetchall()


async def _acked(redis: Redis, key: str) -> bool:
    return (await redis.xpending(key, "poly_trader"))["pending"] == 0
