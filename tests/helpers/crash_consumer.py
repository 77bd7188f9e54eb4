"""A consumer that performs its effect and then hangs before acking, to be SIGKILLed by a test.

Usage: python -m tests.helpers.crash_consumer STREAM GROUP CONSUMER MARKER_FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from redis.asyncio import Redis

from quantcore.bus import Bus, Delivery
from quantcore.config import load_settings
from quantcore.db import open_pool


async def main(stream: str, group: str, name: str, marker: Path) -> None:
    settings = load_settings()
    pool = await open_pool(settings)
    redis = Redis.from_url(settings.redis_url())
    bus = Bus(redis, settings.bus_namespace, source="crash@test")

    async def handler(deliveries: list[Delivery]) -> None:
        async with pool.connection() as conn:
            for d in deliveries:
                cur = await conn.execute(
                    "INSERT INTO bus_effects (event_id, handled_by) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (d.envelope.id, name),
                )
                await conn.execute(
                    "INSERT INTO bus_effect_attempts (event_id, consumer, attempt, applied) "
                    "VALUES (%s, %s, %s, %s)",
                    (d.envelope.id, name, d.attempt, cur.rowcount),
                )
        marker.write_text("effect done, not acked")
        await asyncio.sleep(3600)  # the test SIGKILLs us here: read, effect durable, never acked

    consumer = bus.consumer(stream, group, name, handler, block_ms=200)
    await consumer.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
