"""Test kit: real PostgreSQL and Redis for tests and benchmarks, never mocks.

Where they come from, in order:
1. `TEST_DATABASE_URL` / `TEST_REDIS_URL` when set;
2. otherwise throwaway containers (testcontainers) when a Docker engine answers;
3. otherwise the local servers (postgresql://postgres@127.0.0.1:5432, redis://127.0.0.1:6379).

Each run gets its own freshly migrated database and its own Redis key namespace, and removes
both at the end, so nothing depends on (or leaks into) what a previous run left behind.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlparse

import psycopg
from psycopg import sql
from redis import Redis

from quantcore.config import Settings, load_settings
from quantcore.migrations import migrate

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Infra:
    database_url: str  # an admin connection (may CREATE DATABASE)
    redis_url: str
    origin: str  # "env", "testcontainers" or "local"
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for fn in reversed(self._cleanup):
            with suppress(Exception):
                fn()


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]  # comes with testcontainers

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def resolve_infra() -> Infra:
    db_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if db_url and redis_url:
        return Infra(db_url, redis_url, "env")
    cleanup: list[Callable[[], None]] = []
    if (
        (not db_url or not redis_url)
        and os.environ.get("QUANT_TEST_NO_DOCKER") != "1"
        and _docker_available()
    ):
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        if not db_url:
            pg = PostgresContainer("postgres:15-alpine", driver=None).start()
            cleanup.append(pg.stop)
            db_url = pg.get_connection_url()
        if not redis_url:
            rc = RedisContainer("redis:7-alpine").start()
            cleanup.append(rc.stop)
            redis_url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
        return Infra(db_url, redis_url, "testcontainers", cleanup)
    return Infra(db_url or LOCAL_DATABASE_URL, redis_url or LOCAL_REDIS_URL, "local")


def settings_env(database_url: str, redis_url: str, dbname: str, namespace: str) -> dict[str, str]:
    """Environment variables that point the fleet at a given database and Redis."""
    db = urlparse(database_url)
    rd = urlparse(redis_url)
    return {
        "TIMESCALE_DB_HOST": db.hostname or "127.0.0.1",
        "TIMESCALE_DB_PORT": str(db.port or 5432),
        "TIMESCALE_DB_USER": db.username or "postgres",
        "TIMESCALE_DB_PASS": db.password or "unused-with-trust-auth",
        "TIMESCALE_DB_NAME": dbname,
        "REDIS_HOST": rd.hostname or "127.0.0.1",
        "REDIS_PORT": str(rd.port or 6379),
        "REDIS_PASS": rd.password or "",
        "REDIS_DB": (rd.path or "/0").lstrip("/") or "0",
        "BUS_NAMESPACE": namespace,
        "QUANT_ENV_FILE": "/nonexistent/.env",  # tests never read a developer's own .env
    }


@dataclass
class Sandbox:
    """A freshly migrated database and a private Redis namespace."""

    settings: Settings
    env: dict[str, str]
    dbname: str
    namespace: str


@contextmanager
def sandbox(infra: Infra, label: str = "test", run_migrations: bool = True) -> Iterator[Sandbox]:
    suffix = uuid.uuid4().hex[:10]
    dbname = f"ws_{label}_{suffix}"
    namespace = f"{label}-{suffix}"
    with psycopg.connect(infra.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    env = settings_env(infra.database_url, infra.redis_url, dbname, namespace)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = load_settings()
        if run_migrations:
            migrate(settings)
        yield Sandbox(settings, env, dbname, namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with suppress(Exception), psycopg.connect(infra.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
        with suppress(Exception):
            client = Redis.from_url(infra.redis_url)
            for key in client.scan_iter(match=f"{namespace}:*", count=1000):
                client.delete(key)
            client.close()


_HANDED: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A local TCP port for a server a test or a tool is about to start (a fleet's simulator, a
    fake channel, a private redis-server). Drawn below the kernel's ephemeral range: a port the
    kernel hands out (bind to 0) can be taken again by any outgoing connection — PostgreSQL and
    Redis clients open many — before the server binds it, which under load (or with parallel
    test workers) leaves the server unable to start. A drawn port is checked free and never
    handed out twice by one process."""
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, min(low, 32768))
        if port in _HANDED:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED.add(port)
        return port
    raise RuntimeError("no free local port found below the ephemeral range")
