"""Every loop that talks to the outside backs off with jitter and logs a repeated failure once
per interval: fed a malformed answer, the collectors' universe discovery neither spins nor
floods the log (the broadcaster's Telegram polling: tests/broadcaster/test_control.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from structlog.testing import capture_logs

from quantcore.bus import Bus
from quantcore.service import Service, ServiceContext
from quantcore.testing import Sandbox
from svc_liquidation_collector.service import LiquidationCollector
from svc_market_collector.service import MarketCollector
from tests.adapters.fake_venue import FakeVenue, Reply

INSTRUMENTS = "/v5/market/instruments-info"
MALFORMED = [
    Reply(body={"retCode": 0, "retMsg": "OK", "result": True, "time": 1}),
    Reply(body="<html>502 Bad Gateway</html>"),
    Reply(body={"retCode": 0, "retMsg": "OK", "result": {"list": "none"}, "time": 1}),
]


def _make(cls: type[Service], box: Sandbox, pool: AsyncConnectionPool, redis: Redis,
          fake: FakeVenue) -> Any:  # fmt: skip
    settings = box.settings.model_copy(update={
        "service_instance": f"{cls.name}-test", "bybit_endpoint_rest": fake.url,
    })  # fmt: skip
    bus = Bus(redis, settings.bus_namespace, source=f"{cls.name}@test")
    return cls(ServiceContext(cls.name, cls.name, cls.version, settings, pool, redis, bus))


async def _discover_against_malformed(svc: Any, fake: FakeVenue, seconds: float) -> tuple[int, int]:
    answers = iter(range(10**9))
    fake.routes[INSTRUMENTS] = lambda q: MALFORMED[next(answers) % len(MALFORMED)]
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(svc.discover(stop))
        await asyncio.sleep(seconds)  # the duration under test, not a wait for a condition
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    lines = [e for e in logs if e["log_level"] in ("warning", "error", "critical")
             and e["event"].startswith("universe discovery failed")]  # fmt: skip
    return len(lines), len(fake.calls(INSTRUMENTS))


async def test_market_collector_discovery_backs_off_and_logs_once_per_interval(
    box: Sandbox, pool: AsyncConnectionPool, redis: Redis, fake: FakeVenue
) -> None:
    svc = _make(MarketCollector, box, pool, redis, fake)
    started = time.monotonic()
    lines, calls = await _discover_against_malformed(svc, fake, 6.0)
    assert lines == 1  # one line for the whole outage (interval 60 s), not one per attempt
    assert 2 <= calls <= 40  # jittered back-off from 0.5 s doubling: a hot loop makes thousands
    assert svc.status == "degraded"
    assert time.monotonic() - started < 40


async def test_liquidation_collector_discovery_backs_off_and_logs_once_per_interval(
    box: Sandbox, pool: AsyncConnectionPool, redis: Redis, fake: FakeVenue
) -> None:
    svc = _make(LiquidationCollector, box, pool, redis, fake)
    lines, calls = await _discover_against_malformed(svc, fake, 6.0)
    assert lines == 1
    assert 2 <= calls <= 40
