"""Two replicas given the same signal at once (a republished signal, its two entries read by
both): one decision, announced once. Counted on the journal stream, not in the decisions
table (whose key would hide a second decision). Found by the chaos run's reconciliation: the
loser of the race used to log and journal its own decision anyway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import decode
from quantcore.model.events import AgentLogRecorded
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import Sandbox
from tests.autotrader.test_refresh import autotrader, stale_signal
from tests.fakes.bybit import FakeBybit


async def test_two_replicas_deciding_one_signal_announce_one_decision(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    a1 = autotrader(fresh, fresh_pool, fresh_redis, bybit, service_instance="a1")
    a2 = autotrader(fresh, fresh_pool, fresh_redis, bybit, service_instance="a2")
    old = datetime.now(UTC) - timedelta(hours=2)  # past SIGNAL_MAX_AGE_S: decided 'expired'
    sig = stale_signal(old).model_copy(update={"time": old})
    try:
        await asyncio.gather(a1.decide(sig), a2.decide(sig))
    finally:
        for svc in (a1, a2):
            await svc.venue.close()
            await svc.market.aclose()
    async with fresh_pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT decision, instance FROM autotrader_decisions WHERE signal_id = %s",
            (sig.signal_id,))).fetchall()  # fmt: skip
    assert [r[0] for r in rows] == ["expired"]
    entries = await fresh_redis.xrange(f"{fresh.settings.bus_namespace}:stream:{AGENT_LOG_STREAM}")
    announced = [
        ev for mid, f in entries
        if isinstance(ev := decode(mid.decode(), f).event, AgentLogRecorded)
        and ev.detail.get("signal_id") == str(sig.signal_id)
    ]  # fmt: skip
    assert [a.event_type for a in announced] == ["signal_expired"], announced
