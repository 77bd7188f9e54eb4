"""The bus against a real Redis: typed envelopes, consumer groups, reclaim, dead letters."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import DEADLETTER, Bus, Delivery, Handler, parse_deadletter
from quantcore.db import conninfo
from quantcore.model.events import AgentLogRecorded, Envelope
from tests.conftest import aeventually


def _event(i: int = 0) -> AgentLogRecorded:
    return AgentLogRecorded(
        agent="tests", event_type="test.event", message=f"message {i}", detail={"i": i}
    )


def _stream() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def effects(pool: AsyncConnectionPool) -> AsyncConnectionPool:
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bus_effects (event_id uuid PRIMARY KEY, handled_by text NOT NULL)"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bus_effect_attempts "
            "(event_id uuid NOT NULL, consumer text NOT NULL, attempt int NOT NULL, "
            "applied int NOT NULL DEFAULT 0)"
        )
    return pool


async def _idempotent_effect(
    pool: AsyncConnectionPool, deliveries: list[Delivery], who: str
) -> int:
    """The effect; returns how many deliveries it APPLIED (0 for one already applied): what a
    test counts, rather than rows under a key that forbids duplicates anyway."""
    applied = 0
    async with pool.connection() as conn:
        for d in deliveries:
            cur = await conn.execute(
                "INSERT INTO bus_effects (event_id, handled_by) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (d.envelope.id, who),
            )
            applied += cur.rowcount
    return applied


async def test_publish_then_consume_typed_event_with_envelope(bus: Bus) -> None:
    stream = _stream()
    got: list[Delivery] = []

    async def handler(ds: list[Delivery]) -> None:
        got.extend(ds)

    consumer = bus.consumer(stream, "g", "c1", handler)
    await consumer.ensure_group()
    env = await bus.publish(stream, _event(7), correlation_id="corr-7")
    assert await consumer.poll_once(block_ms=1000) == 1
    (d,) = got
    assert isinstance(d.event, AgentLogRecorded)
    assert d.event.detail == {"i": 7}
    assert d.envelope.id == env.id
    assert d.envelope.type == "agent_log.recorded"
    assert d.envelope.version == 1
    assert d.envelope.source == "tests@pytest"
    assert d.envelope.correlation_id == "corr-7"
    info = await bus.redis.xinfo_groups(bus.key(stream))
    assert info[0]["pending"] == 0  # acked after the handler returned


async def test_each_message_of_a_batch_keeps_its_own_correlation_id(bus: Bus) -> None:
    """Events published while a batch handler works on one message carry that message's
    correlation id (Delivery.bound), not a made-up one for the batch."""
    inbox, outbox = _stream(), _stream()
    relayed: list[Delivery] = []

    async def relay(ds: list[Delivery]) -> None:
        for d in ds:
            with d.bound():
                await bus.publish(outbox, _event(d.event.detail["i"]))  # type: ignore[attr-defined]

    async def collect(ds: list[Delivery]) -> None:
        relayed.extend(ds)

    first = bus.consumer(inbox, "g", "c1", relay)
    second = bus.consumer(outbox, "g", "c1", collect)
    await first.ensure_group()
    await second.ensure_group()
    for i in range(5):
        await bus.publish(inbox, _event(i), correlation_id=f"corr-{i}")
    assert await first.poll_once(block_ms=1000) == 5  # one batch of five
    assert await second.poll_once(block_ms=1000) == 5
    assert {d.event.detail["i"]: d.envelope.correlation_id for d in relayed} == {  # type: ignore[attr-defined]
        i: f"corr-{i}" for i in range(5)
    }


async def test_malformed_messages_are_dead_lettered_and_consumer_keeps_going(
    bus: Bus, redis: Redis
) -> None:
    stream = _stream()
    got: list[Delivery] = []

    async def handler(ds: list[Delivery]) -> None:
        got.extend(ds)

    consumer = bus.consumer(stream, "g", "c1", handler)
    await consumer.ensure_group()
    dl_before = await redis.xlen(bus.key(DEADLETTER))
    key = bus.key(stream)
    await redis.xadd(key, {b"e": b"{not json"})
    await redis.xadd(key, {b"other": b"field"})
    bad_payload = Envelope(
        type="agent_log.recorded",
        version=1,
        source="x",
        correlation_id="c",
        payload={"level": "loud"},
    )
    await redis.xadd(key, {b"e": bad_payload.model_dump_json().encode()})
    unknown = Envelope(type="no.such.event", version=1, source="x", correlation_id="c", payload={})
    await redis.xadd(key, {b"e": unknown.model_dump_json().encode()})
    await bus.publish(stream, _event(1))
    while await consumer.poll_once(block_ms=200):
        pass
    assert [d.event.detail for d in got] == [{"i": 1}]  # type: ignore[attr-defined]
    assert consumer.dead_lettered == 4
    entries = await redis.xrange(bus.key(DEADLETTER))
    mine = [parse_deadletter(f) for _, f in entries[dl_before:] if f[b"stream"] == stream.encode()]
    assert {m["reason"] for m in mine} == {"invalid"}
    assert any("{not json" in m["raw"] for m in mine)
    assert any("unknown event type" in m["error"] for m in mine)
    assert (await redis.xinfo_groups(key))[0]["pending"] == 0


async def test_message_failing_n_times_goes_to_dead_letter(bus: Bus, redis: Redis) -> None:
    stream = _stream()
    attempts: list[int] = []

    async def always_fails(ds: list[Delivery]) -> None:
        attempts.extend(d.attempt for d in ds)
        raise RuntimeError("downstream broken")

    consumer = bus.consumer(
        stream, "g", "c1", always_fails, claim_idle_ms=50, max_deliveries=3, claim_every_s=0
    )
    await consumer.ensure_group()
    await bus.publish(stream, _event(9))
    for _ in range(40):
        await consumer.poll_once(block_ms=20)
        await asyncio.sleep(0.06)
        if consumer.dead_lettered:
            break
    assert attempts == [1, 2, 3]
    assert consumer.dead_lettered == 1
    entries = await redis.xrevrange(bus.key(DEADLETTER), count=10)
    assert any(
        f[b"stream"] == stream.encode() and f[b"reason"] == b"max_deliveries" for _, f in entries
    )
    assert (await redis.xinfo_groups(bus.key(stream)))[0]["pending"] == 0


async def test_poison_message_in_a_batch_does_not_block_the_rest(bus: Bus) -> None:
    stream = _stream()
    done: list[int] = []

    async def handler(ds: list[Delivery]) -> None:
        if any(d.event.detail["i"] == 3 for d in ds):  # type: ignore[attr-defined]
            raise ValueError("poison")
        done.extend(d.event.detail["i"] for d in ds)  # type: ignore[attr-defined]

    consumer = bus.consumer(stream, "g", "c1", handler)
    await consumer.ensure_group()
    await bus.publish_many(stream, [_event(i) for i in range(6)])
    await consumer.poll_once(block_ms=500)
    assert sorted(done) == [0, 1, 2, 4, 5]
    assert (await bus.redis.xinfo_groups(bus.key(stream)))[0]["pending"] == 1  # only the poison one


async def test_two_consumers_split_10000_messages_without_loss_or_duplicates(
    bus: Bus, settings: Any, effects: AsyncConnectionPool
) -> None:
    stream = _stream()
    total = 10_000
    seen: dict[str, list[str]] = {"c1": [], "c2": []}
    applied: dict[str, int] = {"c1": 0, "c2": 0}
    envs: list[Envelope] = []
    for start in range(0, total, 1000):
        envs += await bus.publish_many(stream, [_event(i) for i in range(start, start + 1000)])

    async def run(name: str) -> None:
        client = Redis.from_url(settings.redis_url())
        own = Bus(client, bus.namespace, source=name)

        async def handler(ds: list[Delivery]) -> None:
            seen[name].extend(str(d.envelope.id) for d in ds)
            applied[name] += await _idempotent_effect(effects, ds, name)

        consumer = own.consumer(stream, "split", name, handler, batch_size=200)
        await consumer.ensure_group()
        while await consumer.poll_once(block_ms=300):
            await asyncio.sleep(0)  # let the other consumer take its share
        await client.aclose()

    await asyncio.gather(run("c1"), run("c2"))
    ids = seen["c1"] + seen["c2"]
    assert len(ids) == total  # delivered to a handler 10,000 times in all: none twice ...
    assert set(ids) == {str(e.id) for e in envs}  # ... and every published entry once
    assert seen["c1"]
    assert seen["c2"]
    assert applied["c1"] + applied["c2"] == total  # every effect applied, each once
    info = await bus.redis.xinfo_groups(bus.key(stream))
    assert info[0]["pending"] == 0 and info[0]["lag"] == 0  # all acked on the stream


async def test_sigkilled_consumer_message_is_reclaimed_and_effect_happens_once(
    bus: Bus, redis: Redis, effects: AsyncConnectionPool, spawn: Any, tmp_path: Path
) -> None:
    stream, group = _stream(), "g"
    marker = tmp_path / "read"
    await bus.consumer(stream, group, "unused", _noop).ensure_group()
    env = await bus.publish(stream, _event(42))
    proc = spawn(
        sys.executable, "-m", "tests.helpers.crash_consumer", stream, group, "doomed", str(marker)
    )
    await aeventually(marker.exists, timeout=30)
    proc.send_signal(signal.SIGKILL)  # after the effect, before the ack
    proc.wait(timeout=10)
    pending = await redis.xpending(bus.key(stream), group)
    assert pending["pending"] == 1  # still owned by the dead consumer

    async def survivor_handler(ds: list[Delivery]) -> None:
        applied = await _idempotent_effect(effects, ds, "survivor")
        async with effects.connection() as conn:
            for d in ds:
                await conn.execute(
                    "INSERT INTO bus_effect_attempts (event_id, consumer, attempt, applied) "
                    "VALUES (%s, %s, %s, %s)",
                    (d.envelope.id, "survivor", d.attempt, applied),
                )

    survivor = bus.consumer(
        stream, group, "survivor", survivor_handler, claim_idle_ms=300, claim_every_s=0
    )
    await aeventually(lambda: survivor.poll_once(block_ms=50), timeout=15)
    assert (await redis.xpending(bus.key(stream), group))["pending"] == 0
    async with effects.connection() as conn:
        cur = await conn.execute(
            "SELECT consumer, attempt, applied FROM bus_effect_attempts WHERE event_id = %s "
            "ORDER BY attempt",
            (env.id,),
        )
        attempts = await cur.fetchall()
    # delivered twice (counted per delivery), applied once: the dead consumer applied it, the
    # survivor's attempt found it applied and changed nothing
    assert attempts == [("doomed", 1, 1), ("survivor", 2, 0)]


async def test_a_slow_batch_of_a_live_consumer_is_not_taken_over(bus: Bus) -> None:
    """A handler working longer than claim_idle_ms keeps its entries: a second replica that
    reclaims idle entries meanwhile does not take them and do them again (found by the load
    run: heatmap refresh batches taken over mid-way and refreshed twice, lag past 100 s)."""
    stream, group = _stream(), "g"
    calls: list[tuple[str, str, int]] = []  # (consumer, entry id, attempt)
    release = asyncio.Event()

    def handler(name: str) -> Handler:
        async def handle(ds: list[Delivery]) -> None:
            calls.extend((name, d.message_id, d.attempt) for d in ds)
            if name == "slow":
                await release.wait()

        return handle

    slow = bus.consumer(stream, group, "slow", handler("slow"), claim_idle_ms=300, batch_size=5)
    other = bus.consumer(stream, group, "other", handler("other"), claim_idle_ms=300,
                         claim_every_s=0)  # fmt: skip
    await slow.ensure_group()
    await bus.publish_many(stream, [_event(i) for i in range(5)])
    busy = asyncio.create_task(slow.poll_once(block_ms=100))
    await aeventually(lambda: len(calls) == 5, timeout=10)
    for _ in range(12):  # 1.2 s: four claim intervals, the other replica reclaiming all along
        await other.poll_once(block_ms=100)
    assert [c for c in calls if c[0] == "other"] == []
    release.set()
    assert await busy == 5
    info = await bus.redis.xinfo_groups(bus.key(stream))
    assert info[0]["pending"] == 0
    assert len(calls) == 5


async def test_a_stuck_handler_gives_its_entries_up(bus: Bus) -> None:
    """Renewal stops after ten claim intervals: a handler stuck for good is taken for dead."""
    stream, group = _stream(), "g"
    taken: list[int] = []
    stuck, got = asyncio.Event(), asyncio.Event()

    async def hang(ds: list[Delivery]) -> None:
        got.set()
        await stuck.wait()

    async def take(ds: list[Delivery]) -> None:
        taken.extend(d.attempt for d in ds)

    a = bus.consumer(stream, group, "stuck", hang, claim_idle_ms=100)
    b = bus.consumer(stream, group, "rescuer", take, claim_idle_ms=100, claim_every_s=0)
    await a.ensure_group()
    await bus.publish(stream, _event(1))
    hung = asyncio.create_task(a.poll_once(block_ms=100))
    await asyncio.wait_for(got.wait(), timeout=10)
    await aeventually(lambda: b.poll_once(block_ms=50), timeout=10, interval=0.05)
    assert taken == [2]  # taken over once renewal stopped, flagged as a redelivery
    hung.cancel()


async def _noop(ds: list[Delivery]) -> None:
    return None


async def test_fanout_reaches_live_listeners(bus: Bus) -> None:
    received: list[Envelope] = []

    async def listen() -> None:
        async for env in bus.listen("prices"):
            received.append(env)
            return

    task = asyncio.create_task(listen())
    for _ in range(50):
        if await bus.fanout("prices", _event(5)):
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(task, timeout=5)
    assert received[0].payload["detail"] == {"i": 5}


async def test_streams_without_consumer_groups_are_capped(redis: Redis, settings: Any) -> None:
    small = Bus(redis, settings.bus_namespace, source="t", maxlen=100)
    stream = _stream()
    for start in range(0, 2000, 500):
        await small.publish_many(stream, [_event(i) for i in range(start, start + 500)])
    assert await redis.xlen(small.key(stream)) == 100


async def test_a_stopped_consumer_loses_nothing_while_twice_the_cap_arrives(
    redis: Redis, settings: Any
) -> None:
    """The old `XADD MAXLEN ~ 500` kept ~500 of these 1,100; trimming by the oldest
    un-acknowledged id keeps all of them until the group has acknowledged them."""
    cap, total = 500, 1_100
    bus = Bus(redis, settings.bus_namespace, source="t", maxlen=cap)
    stream = _stream()
    handled: list[int] = []

    async def handler(ds: list[Delivery]) -> None:
        handled.extend(int(d.event.detail["i"]) for d in ds)  # type: ignore[union-attr]

    async def run_consumer_until(count: int) -> None:
        stop = asyncio.Event()
        consumer = bus.consumer(stream, "workers", "w1", handler, block_ms=100)
        task = asyncio.create_task(consumer.run(stop))
        try:
            await aeventually(lambda: len(handled) >= count, timeout=30)
        finally:
            stop.set()
            await task

    first = await bus.publish_many(stream, [_event(i) for i in range(100)])
    await run_consumer_until(100)  # consumer runs, then stops
    for start in range(100, total, 50):  # 1,000 more arrive while it is down: twice the cap
        await bus.publish_many(stream, [_event(i) for i in range(start, start + 50)])
    length_while_down = await redis.xlen(bus.key(stream))
    assert length_while_down >= total - 100  # nothing it has not acknowledged was trimmed
    await run_consumer_until(total)
    assert sorted(handled) == list(range(total))  # every entry processed, each once
    assert len(first) == 100
    # once acknowledged, entries are capped again
    await bus.publish_many(stream, [_event(i) for i in range(total, total + bus.trim_every)])
    assert await redis.xlen(bus.key(stream)) <= cap


async def test_pending_entries_of_a_dead_consumer_survive_trimming(
    redis: Redis, settings: Any
) -> None:
    cap = 100
    bus = Bus(redis, settings.bus_namespace, source="t", maxlen=cap, backlog_limit=10_000)
    stream = _stream()
    dead = bus.consumer(stream, "g", "dead", _noop, batch_size=10)
    await dead.ensure_group()
    await bus.publish_many(stream, [_event(i) for i in range(10)])
    await bus.redis.xreadgroup("g", "dead", {bus.key(stream): ">"}, count=10)  # read, never acked
    live: list[int] = []

    async def handler(ds: list[Delivery]) -> None:
        live.extend(int(d.event.detail["i"]) for d in ds)  # type: ignore[union-attr]

    survivor = bus.consumer(stream, "g", "live", handler, claim_idle_ms=600_000)
    for start in range(10, 510, 50):
        await bus.publish_many(stream, [_event(i) for i in range(start, start + 50)])
        await survivor.poll_once(block_ms=10)  # keeps up with the new ones
    trimmed = await bus.trim(stream)
    assert trimmed.floor is not None  # the dead consumer's oldest pending entry holds the floor
    first_left = await redis.xrange(bus.key(stream), count=1)
    assert first_left[0][0].decode() == trimmed.floor
    await asyncio.sleep(0.25)
    claimer = bus.consumer(stream, "g", "live", handler, claim_idle_ms=200, claim_every_s=0)
    await aeventually(lambda: claimer.poll_once(block_ms=10), timeout=10)  # reclaims them
    assert sorted(live) == list(range(510))
    assert (await bus.trim(stream)).length <= cap


async def test_a_backlog_past_its_limit_raises_an_alarm_and_slows_publishers(
    redis: Redis, settings: Any
) -> None:
    bus = Bus(
        redis,
        settings.bus_namespace,
        source="t",
        maxlen=100,
        backlog_limit=200,
        backpressure_max_wait_s=0.2,
    )
    stream = _stream()
    await bus.consumer(stream, "g", "asleep", _noop).ensure_group()
    for start in range(0, 400, 20):
        await bus.publish_many(stream, [_event(i) for i in range(start, start + 20)])
    assert await redis.xlen(bus.key(stream)) == 400  # nothing dropped
    assert bus.backpressure_waits >= 5  # publishers were held back each time past the limit
    assert bus.alarms.lines == 1  # one alarm line, not one per publish
    assert bus.alarms.failing(stream)
    got: list[str] = []

    async def handler(ds: list[Delivery]) -> None:
        got.extend(d.message_id for d in ds)

    catch_up = bus.consumer(stream, "g", "awake", handler, batch_size=500)
    await catch_up.poll_once(block_ms=100)
    assert len(got) == 400
    await bus.publish_many(stream, [_event(i) for i in range(bus.trim_every)])
    assert not bus.alarms.failing(stream)  # the recovery was logged once and the alarm cleared
    assert bus.alarms.lines == 2


async def test_rejected_external_payload_is_dead_lettered_with_its_raw_snippet(
    bus: Bus, redis: Redis
) -> None:
    raw = '{"symbol":"BTCUSDT","lastPrice":"abc"}'
    await bus.reject("bybit", "ticker", raw, "lastPrice: not a number")
    ((_, fields),) = await redis.xrevrange(bus.key(DEADLETTER), count=1)
    entry = parse_deadletter(fields)
    assert entry["stream"] == "external:bybit:ticker"
    assert entry["reason"] == "invalid_external"
    assert entry["raw"] == raw
    assert "not a number" in entry["error"]


async def test_killed_redis_and_database_connections_lose_nothing(
    bus: Bus, settings: Any, effects: AsyncConnectionPool
) -> None:
    """Chaos on the connections: while 600 entries arrive, the consumer's Redis connection is
    killed (CLIENT KILL) and the effect's database connections are terminated
    (pg_terminate_backend) again and again. Every entry is handled and its effect stored,
    nothing is left pending, the consumer never stops."""
    stream = _stream()
    name = f"chaos-{uuid.uuid4().hex[:6]}"
    client = Redis.from_url(settings.redis_url(), client_name=name)
    own = Bus(client, bus.namespace, source="chaos@test")
    handled: list[str] = []
    applied = 0
    app_name = f"chaos-effects-{uuid.uuid4().hex[:6]}"
    pool = AsyncConnectionPool(
        conninfo(settings) + f" application_name={app_name}", min_size=1, max_size=2, open=False
    )
    await pool.open(wait=True)

    async def handler(ds: list[Delivery]) -> None:
        nonlocal applied
        handled.extend(str(d.envelope.id) for d in ds)
        applied += await _idempotent_effect(pool, ds, "chaos")

    consumer = own.consumer(stream, "g", "c1", handler, batch_size=20, block_ms=100,
                            claim_idle_ms=300, claim_every_s=0.2)  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    envs: list[Envelope] = []
    kills = {"redis": 0, "postgres": 0}
    try:
        for start in range(0, 600, 30):
            envs += await bus.publish_many(stream, [_event(i) for i in range(start, start + 30)])
            await asyncio.sleep(0.05)
            if start % 60 == 0:  # only our consumer's connections (the Redis is shared)
                for c in await bus.redis.client_list():
                    if c.get("name") == name:
                        kills["redis"] += int(await bus.redis.client_kill_filter(_id=c["id"]) or 0)
            else:
                async with effects.connection() as conn:
                    cur = await conn.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = %s", (app_name,),
                    )  # fmt: skip
                    row = await cur.fetchone()
                    kills["postgres"] += int(row[0]) if row else 0

        async def settled() -> bool:
            info = await bus.redis.xinfo_groups(bus.key(stream))
            return {str(e.id) for e in envs} <= set(handled) and info[0]["pending"] == 0

        await aeventually(settled, timeout=60, interval=0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await client.aclose()
        await pool.close()
    assert kills["redis"] >= 5 and kills["postgres"] >= 5, kills  # really killed, again and again
    assert set(handled) == {str(e.id) for e in envs}  # every entry reached the handler
    async with effects.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM bus_effects WHERE event_id = ANY(%s)", ([e.id for e in envs],)
        )
        row = await cur.fetchone()
    assert row == (600,)  # and its effect is durable: nothing lost to a killed connection
    # (applied once by construction: the effect is keyed; a commit whose answer was lost to a
    # killed connection is retried and then changes nothing)
    assert 0 < applied <= 600
