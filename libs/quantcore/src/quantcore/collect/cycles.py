"""Wall-clock cycles: work that runs every N seconds, aligned so every replica agrees on the
cycle number (the key of per-cycle claims)."""

from __future__ import annotations

import asyncio
import contextlib
import time


def cycle_of(interval_s: float, now: float | None = None) -> int:
    return int((time.time() if now is None else now) // interval_s)


def cycle_start(cycle: int, interval_s: float) -> float:
    return cycle * interval_s


async def sleep_until(t: float, stop: asyncio.Event) -> bool:
    """Sleep until epoch time t; return False when stop was set meanwhile."""
    delay = t - time.time()
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    return not stop.is_set()
