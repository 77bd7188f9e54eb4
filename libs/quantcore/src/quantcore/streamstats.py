"""Stream backlogs and dead letters, sampled from Redis into `stream_stats` (Grafana reads only
the database). The journal runs `sample_forever`; `quant status` shows the same figures live.

One row per stream with consumer_group '' (its length), plus one per consumer group (length,
consumers, pending, lag). Sample times are aligned to the interval, so replicas sampling the
same moment write one row (the key is (stream, consumer_group, time); later writers are
ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from quantcore.bus import stream_key
from quantcore.db import copy_upsert
from quantcore.logging import get_logger

log = get_logger(component="stream_stats")

COLUMNS = ("time", "stream", "consumer_group", "length", "consumers", "pending", "lag", "agent")


class StreamSample(BaseModel):
    """One stream_stats row."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    stream: str
    consumer_group: str = ""  # '' = the stream itself
    length: int
    consumers: int | None = None
    pending: int | None = None
    lag: int | None = None
    agent: str

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)


def aligned(now: datetime, interval_s: float) -> datetime:
    """`now` floored to the sampling interval (so replicas agree on the sample time)."""
    step = max(interval_s, 1.0)
    return datetime.fromtimestamp((now.timestamp() // step) * step, UTC)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def sample_streams(
    redis: Redis, namespace: str, at: datetime, agent: str
) -> list[StreamSample]:
    """Every stream of this namespace (dead letters included) and its consumer groups."""
    prefix = stream_key(namespace, "")
    samples: list[StreamSample] = []
    async for key in redis.scan_iter(match=prefix + "*", count=500, _type="STREAM"):
        name = _text(key)[len(prefix) :]
        length = int(await redis.xlen(key))
        samples.append(StreamSample(time=at, stream=name, length=length, agent=agent))
        for g in await redis.xinfo_groups(key):
            lag = g.get("lag")
            samples.append(
                StreamSample(
                    time=at,
                    stream=name,
                    consumer_group=_text(g["name"]),
                    length=length,
                    consumers=int(g["consumers"]),
                    pending=int(g["pending"]),
                    lag=None if lag is None else int(lag),
                    agent=agent,
                )
            )
    return samples


async def write_samples(pool: AsyncConnectionPool, samples: list[StreamSample]) -> int:
    async with pool.connection() as conn:
        return await copy_upsert(
            conn,
            "stream_stats",
            COLUMNS,
            [s.row() for s in samples],
            conflict=("stream", "consumer_group", "time"),
        )


async def sample_once(
    redis: Redis, pool: AsyncConnectionPool, namespace: str, interval_s: float, agent: str
) -> int:
    at = aligned(datetime.now(UTC), interval_s)
    return await write_samples(pool, await sample_streams(redis, namespace, at, agent))


async def sample_forever(
    redis: Redis,
    pool: AsyncConnectionPool,
    namespace: str,
    interval_s: float,
    agent: str,
    stop: asyncio.Event,
) -> None:
    """Sample every `interval_s` until `stop`; a failed sample is logged, never fatal."""
    while not stop.is_set():
        try:
            await sample_once(redis, pool, namespace, interval_s, agent)
        except Exception as exc:
            log.warning("stream stats sample failed", error=str(exc)[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
