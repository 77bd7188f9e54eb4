"""Shared fixtures: a real, freshly migrated PostgreSQL database and a private Redis namespace.

See quantcore.testing for where the servers come from (env URLs → testcontainers → local).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Bus
from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.testing import Infra, Sandbox, resolve_infra, sandbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    resolved = resolve_infra()
    print(f"\ntest infrastructure: {resolved.origin}", file=sys.stderr)
    yield resolved
    resolved.close()


@pytest.fixture(scope="session")
def box(infra: Infra) -> Iterator[Sandbox]:
    with sandbox(infra, "test") as sb:
        yield sb


@pytest.fixture(scope="session")
def settings(box: Sandbox) -> Settings:
    return box.settings


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(settings), min_size=1, max_size=8, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
def fresh(infra: Infra) -> Iterator[Sandbox]:
    """A database and Redis namespace of this test's own (for tests that count global rows)."""
    with sandbox(infra, "fresh") as sb:
        yield sb


@pytest.fixture
async def fresh_pool(fresh: Sandbox) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(fresh.settings), min_size=1, max_size=10, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
async def fresh_redis(fresh: Sandbox) -> AsyncIterator[Redis]:
    client = Redis.from_url(fresh.settings.redis_url())
    yield client
    await client.aclose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url())
    yield client
    await client.aclose()


@pytest.fixture
async def bus(redis: Redis, settings: Settings) -> Bus:
    return Bus(
        redis, settings.bus_namespace, source="tests@pytest", maxlen=settings.bus_stream_maxlen
    )


@pytest.fixture
def quant(box: Sandbox) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `quant` CLI in a subprocess against the sandbox; returns the completed process."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quantcore.cli", *args],
            env={**os.environ, **box.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    return run


@pytest.fixture
def spawn(box: Sandbox) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a long-running process against the sandbox; killed at the end of the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(*cmd: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            list(cmd),
            env={**os.environ, **box.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def eventually(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll until check() returns a truthy value (instead of sleeping a fixed time)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def aeventually(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05
) -> Any:
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end files first (a stable sort: each file keeps its order): the xdist workers
    take a file at a time, so the long fleet runs start at once, side by side, and the many
    short files fill in around them instead of one worker finishing a long run alone."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)
