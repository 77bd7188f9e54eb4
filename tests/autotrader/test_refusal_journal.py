"""A signal refused by a risk guard under the shared risk lock is journaled (`signal_refused`
on the agent-log stream, which the journal service writes to `agent_logs`) as well as recorded
in `autotrader_decisions` — the same as every other way a signal is not traded.

The autotrader runs in-process against real PostgreSQL and Redis, the paper venue and the
refresh test's fake Bybit REST server; the signals' data is fresh, so the decision goes
straight to the lock, where the guards run (quantcore.trading.risk.refusal).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Envelope
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import Sandbox
from quantcore.trading.killswitch import KillSwitch
from tests.autotrader.test_refresh import autotrader, stale_signal
from tests.fakes.bybit import FakeBybit


async def journal(redis: Redis, ns: str) -> list[dict[str, object]]:
    entries = await redis.xrange(f"{ns}:stream:{AGENT_LOG_STREAM}")
    return [Envelope.model_validate_json(f[b"e"]).payload for _, f in entries]


async def decisions(pool: AsyncConnectionPool) -> dict[uuid.UUID, tuple[str, str | None]]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT signal_id, decision, reason FROM autotrader_decisions")
        return {sid: (d, r) for sid, d, r in await cur.fetchall()}


async def test_refusals_under_the_risk_lock_are_journaled(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, bybit: FakeBybit
) -> None:
    ns = fresh.settings.bus_namespace
    svc = autotrader(fresh, fresh_pool, fresh_redis, bybit)
    first, second, third = (stale_signal(datetime.now(UTC)) for _ in range(3))  # fresh data
    try:
        await svc.decide(first)  # traded: a position in SOLUSDT
        await svc.decide(second)  # the one-per-coin guard refuses it under the lock
        await KillSwitch(fresh_redis, ns).engage("test pause", by="tests")
        await svc.decide(third)  # the kill switch, read during the lock's round trip
    finally:
        await svc.venue.close()
        await svc.market.aclose()

    got = await decisions(fresh_pool)
    assert got[first.signal_id][0] == "traded"
    assert got[second.signal_id] == ("refused", "already a position in SOLUSDT (one per coin)")
    assert got[third.signal_id] == ("refused", "kill switch engaged: test pause")

    entries = await journal(fresh_redis, ns)
    refused = [e for e in entries if e["event_type"] == "signal_refused"]
    by_signal = {e["detail"]["signal_id"]: e for e in refused}  # type: ignore[index]
    assert len(refused) == 2 and set(by_signal) == {str(second.signal_id), str(third.signal_id)}
    assert by_signal[str(second.signal_id)]["message"] == (
        "SOLUSDT: already a position in SOLUSDT (one per coin)"
    )
    assert by_signal[str(third.signal_id)]["message"] == "SOLUSDT: kill switch engaged: test pause"
    assert all(e["symbol"] == "SOLUSDT" and e["vertical"] == "perps" for e in refused)
    # the traded one is journaled as planned, never as refused
    planned = [e for e in entries if e["event_type"] == "entry_planned"]
    assert [e["detail"]["signal_id"] for e in planned] == [str(first.signal_id)]  # type: ignore[index]
