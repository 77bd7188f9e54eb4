"""stream_stats: stream length, each consumer group's pending and lag, and the dead letters,
sampled from real Redis into the real database; replicas sampling the same moment write once."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import DEADLETTER, stream_key
from quantcore.streamstats import aligned, sample_once, sample_streams
from quantcore.testing import Sandbox


async def test_sample_counts_length_pending_lag_and_dead_letters(
    fresh_redis: Redis, fresh_pool: AsyncConnectionPool, fresh: Sandbox
) -> None:
    # a namespace of its own (removed with the sandbox): only this test's streams are sampled
    redis, pool, ns = fresh_redis, fresh_pool, fresh.settings.bus_namespace
    work = stream_key(ns, "work")
    for i in range(5):
        await redis.xadd(work, {"e": str(i)})
    await redis.xgroup_create(work, "workers", id="0")
    await redis.xreadgroup("workers", "w1", {work: ">"}, count=2)  # 2 pending, 3 not delivered
    await redis.xadd(stream_key(ns, DEADLETTER), {"e": "bad"})

    at = aligned(datetime.now(UTC), 30)
    samples = {(s.stream, s.consumer_group): s for s in await sample_streams(redis, ns, at, "t")}
    assert set(samples) == {("work", ""), ("work", "workers"), (DEADLETTER, "")}
    group = samples[("work", "workers")]
    assert (group.length, group.pending, group.lag, group.consumers) == (5, 2, 3, 1)
    assert samples[(DEADLETTER, "")].length == 1

    first = await sample_once(redis, pool, ns, 3600, "replica-1")
    again = await sample_once(redis, pool, ns, 3600, "replica-2")  # same aligned hour
    assert (first, again) == (3, 0)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT stream, consumer_group, length, pending, lag, agent FROM stream_stats "
            "WHERE stream IN ('work', 'deadletter') AND agent LIKE 'replica-%%' "
            "ORDER BY stream, consumer_group"
        )
        rows = await cur.fetchall()
    assert rows == [
        ("deadletter", "", 1, None, None, "replica-1"),
        ("work", "", 5, None, None, "replica-1"),
        ("work", "workers", 5, 2, 3, "replica-1"),
    ]


def test_aligned_floors_to_the_interval() -> None:
    t = datetime(2026, 11, 21, 12, 0, 47, 123000, tzinfo=UTC)
    assert aligned(t, 30) == datetime(2026, 11, 21, 12, 0, 30, tzinfo=UTC)
    assert aligned(t, 60) == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
