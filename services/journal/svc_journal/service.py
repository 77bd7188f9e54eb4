"""Journal: the fleet's memory of decisions and incidents.

Reads `agent_log.recorded` events from the `agent_logs` stream (consumer group `journal`,
so replicas share the stream) and bulk-writes them to the `agent_logs` table. The write is
idempotent on the event id, so a message redelivered after a crash is stored once.

It also samples every stream's length, pending and lag (and the dead letters) into
`stream_stats` every STREAM_STATS_INTERVAL_S, for Grafana's System dashboard.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from psycopg.types.json import Jsonb

from quantcore.bus import Delivery
from quantcore.db import copy_upsert
from quantcore.model.events import AgentLogRecorded
from quantcore.service import AGENT_LOG_STREAM, Service
from quantcore.streamstats import sample_forever

COLUMNS = (
    "time",
    "event_id",
    "service",
    "agent",
    "instance",
    "vertical",
    "level",
    "event_type",
    "message",
    "symbol",
    "correlation_id",
    "detail",
)


def to_row(delivery: Delivery) -> tuple[Any, ...]:
    env, event = delivery.envelope, delivery.event
    assert isinstance(event, AgentLogRecorded)
    service, _, instance = env.source.partition("@")
    return (
        env.time,
        env.id,
        service,
        event.agent,
        instance or None,
        event.vertical,
        event.level,
        event.event_type,
        event.message,
        event.symbol,
        env.correlation_id,
        Jsonb(event.detail),
    )


class JournalService(Service):
    name: ClassVar[str] = "journal"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "agent_logs stream → agent_logs table; stream backlogs → stream_stats"
    )

    async def write(self, deliveries: list[Delivery]) -> None:
        rows = [to_row(d) for d in deliveries if isinstance(d.event, AgentLogRecorded)]
        async with self.ctx.pool.connection() as conn, conn.transaction():
            await copy_upsert(conn, "agent_logs", COLUMNS, rows, conflict=("event_id", "time"))
        self.status_info["written"] = self.status_info.get("written", 0) + len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.ctx.settings
        consumer = self.ctx.bus.consumer(
            AGENT_LOG_STREAM,
            group="journal",
            name=self.ctx.instance,
            handler=self.write,
            batch_size=s.bus_batch_size,
            claim_idle_ms=s.bus_claim_idle_ms,
            max_deliveries=s.bus_max_deliveries,
        )
        await asyncio.gather(
            consumer.run(stop),
            sample_forever(
                self.ctx.redis,
                self.ctx.pool,
                s.bus_namespace,
                s.stream_stats_interval_s,
                self.ctx.instance,
                stop,
            ),
        )
