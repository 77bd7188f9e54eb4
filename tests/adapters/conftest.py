from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from quantcore.retry import RetryPolicy
from tests.adapters.fake_venue import FakeVenue

FAST = RetryPolicy(attempts=3, base_s=0.01, max_s=0.05)


@pytest.fixture
async def fake() -> AsyncIterator[FakeVenue]:
    venue = FakeVenue()
    await venue.start()
    yield venue
    await venue.stop()


class BadLog:
    """An on_bad callback that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def __call__(self, kind: str, raw: str, reason: str) -> None:
        self.calls.append((kind, raw, reason))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.calls]


@pytest.fixture
def bad() -> BadLog:
    return BadLog()


async def eventually(
    cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
