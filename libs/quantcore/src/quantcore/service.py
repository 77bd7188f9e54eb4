"""Service base: one process per service, a run loop with graceful shutdown and heartbeats.

A service subclasses `Service`, sets `name`/`version`, and implements `run(stop)`, returning
when `stop` is set. `run_service` does the rest: settings (exit 2 with a message naming the
variable when one is bad), JSON logging, the database pool, Redis, SIGTERM/SIGINT, and a
heartbeat every HEARTBEAT_INTERVAL_S into `service_heartbeats` and a Redis key with a TTL,
which `quant health <service>` reads (the compose healthcheck).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Bus
from quantcore.config import ConfigError, Settings, load_settings
from quantcore.db import open_pool
from quantcore.logging import configure_logging, get_logger
from quantcore.model.events import AgentLogRecorded, LogLevel

AGENT_LOG_STREAM = "agent_logs"
Status = Literal["starting", "ok", "degraded", "stopping", "stopped", "failed"]
ALIVE: tuple[str, ...] = ("starting", "ok", "degraded")


def beat_is_fresh(status: str, beat_at: datetime, now: datetime, ttl: timedelta) -> bool:
    """The one liveness rule (Telegram /status, `quant status`): an alive status, beaten within ttl."""
    return status in ALIVE and now - beat_at <= ttl


STOP_GRACE_S = 15.0


def heartbeat_key(namespace: str, service: str, instance: str) -> str:
    return f"{namespace}:hb:{service}:{instance}"


@dataclass
class ServiceContext:
    """What a running service gets: settings, database pool, Redis, bus, identity."""

    service: str
    agent: str
    version: str
    settings: Settings
    pool: AsyncConnectionPool
    redis: Redis
    bus: Bus
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def instance(self) -> str:
        return self.settings.instance

    async def journal(
        self,
        event_type: str,
        message: str,
        level: LogLevel = "info",
        symbol: str | None = None,
        vertical: Literal["perps", "poly", "system"] = "system",
        **detail: Any,
    ) -> None:
        """Record a decision/incident in `agent_logs` (through the bus and the journal service)."""
        await publish_journal(self.bus, self.agent, event_type, message, level, symbol, vertical,
                              **detail)  # fmt: skip


async def publish_journal(
    bus: Bus,
    agent: str,
    event_type: str,
    message: str,
    level: LogLevel = "info",
    symbol: str | None = None,
    vertical: Literal["perps", "poly", "system"] = "system",
    **detail: Any,
) -> None:
    """Publish one `agent_logs` entry as `agent` (services through `ctx.journal`, the CLI directly)."""
    await bus.publish(
        AGENT_LOG_STREAM,
        AgentLogRecorded(
            agent=agent,
            level=level,
            event_type=event_type,
            message=message,
            symbol=symbol,
            vertical=vertical,
            detail=detail,
        ),
    )


class Service(ABC):
    """Base of every fleet member."""

    name: ClassVar[str]
    agent: ClassVar[str | None] = None  # the agent name written on rows; defaults to `name`
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.log = get_logger()
        self.status: Status = "starting"
        self.status_info: dict[str, Any] = {}

    @classmethod  # noqa: B027 - an optional hook, not abstract
    def check_settings(cls, settings: Settings) -> None:
        """Raise ConfigError when a setting this service cannot work without is missing."""

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Do the work until `stop` is set, then return."""


async def _heartbeat_once(svc: Service, status: Status) -> None:
    ctx = svc.ctx
    now = datetime.now(UTC)
    # mode and data source in every beat: Grafana's SIMULATED / PAPER / LIVE marker reads them
    info = {
        "version": svc.version,
        "data_source": ctx.settings.data_source,
        "trading_mode": ctx.settings.trading_mode,
        **svc.status_info,
    }
    payload = {
        "service": ctx.service,
        "instance": ctx.instance,
        "status": status,
        "beat_at": now.isoformat(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **info,
    }
    key = heartbeat_key(ctx.settings.bus_namespace, ctx.service, ctx.instance)
    ttl = max(int(ctx.settings.heartbeat_ttl_s), 1)
    try:
        await ctx.redis.set(key, json.dumps(payload, default=str), ex=ttl)
    except Exception as exc:  # a heartbeat must never take the service down
        svc.log.warning("heartbeat to redis failed", error=str(exc)[:200])
    try:
        async with ctx.pool.connection() as conn:
            await conn.execute(
                """
                INSERT INTO service_heartbeats
                    (service, instance, host, pid, version, status, started_at, beat_at, info)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (service, instance) DO UPDATE SET
                    status = EXCLUDED.status, beat_at = EXCLUDED.beat_at,
                    version = EXCLUDED.version, info = EXCLUDED.info
                """,
                (
                    ctx.service,
                    ctx.instance,
                    socket.gethostname(),
                    os.getpid(),
                    svc.version,
                    status,
                    ctx.started_at,
                    now,
                    Jsonb(info),
                ),
            )
    except Exception as exc:
        svc.log.warning("heartbeat to database failed", error=str(exc)[:200])


async def _heartbeat_loop(svc: Service, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await _heartbeat_once(svc, svc.status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=svc.ctx.settings.heartbeat_interval_s)


async def connect_redis(settings: Settings) -> Redis:
    """Connect to Redis, waiting up to DB_CONNECT_TIMEOUT_S for it to come up."""
    log = get_logger(component="redis")
    client: Redis = Redis.from_url(settings.redis_url(), health_check_interval=30)
    deadline = asyncio.get_running_loop().time() + settings.db_connect_timeout_s
    delay = 0.5
    while True:
        try:
            await client.ping()
            return client
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                await client.aclose()
                raise
            log.warning("redis not reachable yet, retrying", error=str(exc)[:200])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _main(cls: type[Service], settings: Settings) -> int:
    log = get_logger()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    pool = await open_pool(settings)
    redis = await connect_redis(settings)
    agent = cls.agent or cls.name
    bus = Bus(
        redis,
        settings.bus_namespace,
        source=f"{cls.name}@{settings.instance}",
        maxlen=settings.bus_stream_maxlen,
        backlog_limit=settings.bus_stream_backlog_max,
    )
    ctx = ServiceContext(cls.name, agent, cls.version, settings, pool, redis, bus)
    svc = cls(ctx)
    heartbeat = asyncio.create_task(_heartbeat_loop(svc, stop), name="heartbeat")
    log.info(
        "service starting",
        version=cls.version,
        data_source=settings.data_source,
        trading_mode=settings.trading_mode,
    )
    code = 0
    try:
        await ctx.journal(
            "service.started", f"{cls.name} {cls.version} started", instance=ctx.instance
        )
        if svc.status == "starting":
            svc.status = "ok"
        work = asyncio.create_task(svc.run(stop), name=cls.name)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            svc.status = "stopping"
            log.info("stop requested, finishing current work", grace_s=STOP_GRACE_S)
            try:
                await asyncio.wait_for(work, timeout=STOP_GRACE_S)
            except TimeoutError:
                log.warning("service did not stop in time; cancelled")
        else:
            stopper.cancel()
            work.result()  # re-raise a crash
            log.info("service run loop returned")
        svc.status = "stopped"
    except ConfigError as exc:  # refused to start (e.g. a live venue's pre-flight check)
        log.error("configuration error: refusing to start", error=str(exc)[:500])
        svc.status = "failed"
        code = 2
    except Exception:
        log.exception("service crashed")
        svc.status = "failed"
        code = 1
    finally:
        stop.set()
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await _heartbeat_once(svc, svc.status)
        try:
            await ctx.journal(
                "service.stopped",
                f"{cls.name} stopped ({svc.status})",
                level="info" if code == 0 else "error",
                instance=ctx.instance,
            )
            await redis.delete(heartbeat_key(settings.bus_namespace, cls.name, settings.instance))
        except Exception as exc:
            log.warning("could not record the stop", error=str(exc)[:200])
        await redis.aclose()
        await pool.close()
    log.info("service stopped", status=svc.status)
    return code


def run_service(cls: type[Service]) -> int:
    """Run a service to completion; returns the process exit code."""
    try:
        settings = load_settings()
        cls.check_settings(settings)
    except ConfigError as exc:
        print(f"{cls.name}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        cls.name,
        cls.agent or cls.name,
        settings.instance,
        settings.log_level,
        settings.secret_values(),
    )
    try:
        return asyncio.run(_main(cls, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # could not even start (database or Redis unreachable)
        get_logger().error("service could not start", error=str(exc)[:500])
        return 1
