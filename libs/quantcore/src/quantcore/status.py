"""Read-only views of the running fleet: heartbeats, stream lags, dead letters, health."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from redis import Redis

from quantcore.bus import DEADLETTER, stream_key
from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.service import ALIVE, beat_is_fresh, heartbeat_key
from quantcore.store.control import Heartbeat, heartbeats


def _redis(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url(), socket_timeout=5, socket_connect_timeout=5)


def health(settings: Settings, service: str) -> tuple[bool, str]:
    """Is an instance of `service` on this host alive (fresh heartbeat key, alive status)?

    Used as the compose healthcheck: each container checks its own instance(s). With
    SERVICE_INSTANCE set, that instance exactly; otherwise any `hostname:*` instance.
    """
    ns = settings.bus_namespace
    pattern = (
        heartbeat_key(ns, service, settings.service_instance)
        if settings.service_instance
        else heartbeat_key(ns, service, f"{socket.gethostname()}:*")
    )
    client = _redis(settings)
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        if not keys:
            return False, f"{service}: no heartbeat from this host (key {pattern})"
        beats = [json.loads(v) for v in client.mget(keys) if v]
    finally:
        client.close()
    alive = [b for b in beats if b.get("status") in ALIVE]
    if not alive:
        return (
            False,
            f"{service}: status {', '.join(sorted({str(b.get('status')) for b in beats}))}",
        )
    return True, f"{service}: " + ", ".join(f"{b['instance']} {b['status']}" for b in alive)


async def _heartbeats(settings: Settings) -> list[Heartbeat]:
    async with await psycopg.AsyncConnection.connect(conninfo(settings)) as conn:
        return await heartbeats(conn)


def fleet_status(settings: Settings) -> dict[str, Any]:
    """Services with their last heartbeat, and every stream's length, groups, lag and pending."""
    now = datetime.now(UTC)
    ttl = timedelta(seconds=settings.heartbeat_ttl_s)
    services = [
        {
            "service": b.service,
            "instance": b.instance,
            "status": b.status,
            "version": b.version,
            "last_beat_s": round((now - b.beat_at).total_seconds(), 1),
            "stale": b.status in ALIVE and not beat_is_fresh(b.status, b.beat_at, now, ttl),
        }
        for b in asyncio.run(_heartbeats(settings))
    ]
    streams: list[dict[str, Any]] = []
    client = _redis(settings)
    try:
        prefix = stream_key(settings.bus_namespace, "")
        for key in sorted(client.scan_iter(match=prefix + "*", count=500, _type="STREAM")):
            name = key.decode()[len(prefix) :]
            groups = [
                {
                    "group": g["name"].decode(),
                    "consumers": g["consumers"],
                    "pending": g["pending"],
                    "lag": g.get("lag"),
                }
                for g in client.xinfo_groups(key)
            ]
            streams.append({"stream": name, "length": client.xlen(key), "groups": groups})
        dead = client.xlen(stream_key(settings.bus_namespace, DEADLETTER))
    finally:
        client.close()
    return {"services": services, "streams": streams, "dead_letters": dead}


def render(status: dict[str, Any]) -> str:
    lines = ["SERVICE              INSTANCE                         STATUS     LAST BEAT"]
    for s in status["services"]:
        flag = "  (stale)" if s["stale"] else ""
        lines.append(
            f"{s['service']:<20} {s['instance'][:32]:<32} {s['status']:<10} {s['last_beat_s']:>6}s ago{flag}"
        )
    if not status["services"]:
        lines.append("(no service has sent a heartbeat yet)")
    lines += ["", "STREAM               LENGTH   GROUP                CONSUMERS  PENDING  LAG"]
    for st in status["streams"]:
        if not st["groups"]:
            lines.append(f"{st['stream']:<20} {st['length']:>6}   (no consumer group)")
        for g in st["groups"]:
            lines.append(
                f"{st['stream']:<20} {st['length']:>6}   {g['group']:<20} {g['consumers']:>9}  "
                f"{g['pending']:>7}  {g['lag'] if g['lag'] is not None else '?'}"
            )
    lines += ["", f"dead letters: {status['dead_letters']}"]
    return "\n".join(lines)
