"""Redis restarted (AOF on, as compose runs it) under a running publisher and consumer: every
event the publisher got an acknowledgement for is still on the stream and is handled; no entry
is handed out as new twice (the consumer group's state survived: only an entry in flight at the
restart comes again, flagged as a redelivery); no event is on the stream twice.

Runs on a private `redis-server` (tests/helpers/redis_server.py): the shared one is never
restarted. Two ways down: a clean restart (SHUTDOWN, what `docker compose restart` does) and a
crash (SIGKILL) with `appendfsync always`."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quantcore.bus import Bus, Delivery, decode
from quantcore.model.events import AgentLogRecorded
from tests.conftest import aeventually
from tests.helpers.redis_server import RedisServer, available

pytestmark = pytest.mark.skipif(not available(), reason="needs the redis-server binary")

STREAM = "restart.test"
N = 400


def event(k: int) -> AgentLogRecorded:
    return AgentLogRecorded(agent="restart-test", event_type="restart.n", message=f"event {k}",
                            detail={"k": k})  # fmt: skip


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_redis_restart_under_a_running_consumer(tmp_path: Path, how: str) -> None:
    server = RedisServer(tmp_path / "redis", fsync="always" if how == "crash" else "everysec")
    server.start()
    redis = Redis.from_url(server.url, socket_timeout=5)
    bus = Bus(redis, "restart", source="test@restart")
    seen: list[tuple[int, int, str]] = []  # (k, attempt, entry id) per handler call

    async def handler(deliveries: list[Delivery]) -> None:
        for d in deliveries:
            assert isinstance(d.event, AgentLogRecorded)
            seen.append((int(d.event.detail["k"]), d.attempt, d.message_id))

    consumer = bus.consumer(STREAM, "g", "c1", handler, block_ms=100, claim_idle_ms=500,
                            batch_size=16)  # fmt: skip
    await consumer.ensure_group()
    stop = asyncio.Event()
    consuming = asyncio.create_task(consumer.run(stop))
    acked: set[int] = set()
    uncertain: set[int] = set()  # a publish that failed: it may or may not have reached Redis
    restarted = threading.Event()
    try:
        for k in range(N):
            if k == N // 3:  # mid-stream, with the consumer busy
                threading.Thread(
                    target=lambda: (server.restart(down_s=1.0, crash=how == "crash"),
                                    restarted.set()), daemon=True,
                ).start()  # fmt: skip
            while True:
                try:
                    await bus.publish(STREAM, event(k))
                    acked.add(k)
                    break
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    uncertain.add(k)  # as a service would: publish again (at least once)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.003)
        assert restarted.wait(30) and server.restarts == 1
        await aeventually(lambda: {k for k, _, _ in seen} >= acked, timeout=60, interval=0.1)

        async def drained() -> bool:
            probe = Redis.from_url(server.url)  # the test's own look, on a fresh connection
            try:
                info = await probe.xinfo_groups(bus.key(STREAM))
            finally:
                await probe.aclose()
            return int(info[0]["pending"]) == 0 and int(info[0].get("lag") or 0) == 0

        await aeventually(drained, timeout=30, interval=0.1)
    finally:
        stop.set()
        await asyncio.wait_for(consuming, timeout=10)
    await redis.aclose()
    probe = Redis.from_url(server.url)
    entries = await probe.xrange(bus.key(STREAM))
    await probe.aclose()
    server.close()

    on_stream = Counter(
        int(decode(mid.decode(), f).event.detail["k"])  # type: ignore[attr-defined]
        for mid, f in entries
    )
    assert set(on_stream) == set(range(N))  # nothing acknowledged was lost by the restart
    doubled = {k for k, n in on_stream.items() if n > 1 and k not in uncertain}
    assert not doubled, doubled
    first_deliveries = Counter(mid for _, attempt, mid in seen if attempt == 1)
    assert max(first_deliveries.values()) == 1  # the group's state survived: nothing re-sent as new
    assert {mid for _, _, mid in seen} == {mid.decode() for mid, _ in entries}  # all handled
    again = len(seen) - len({mid for _, _, mid in seen})
    assert again <= 16 * 2, again  # only what was in flight at the restart comes again
    print(f"\nredis {how}: {N} events, {len(uncertain)} publishes retried, "
          f"{again} redeliveries (in flight at the restart), 0 lost, 0 doubled")  # fmt: skip
