"""Back-off with jitter and log-once-per-interval, for every loop that talks to the outside.

A loop that polls a venue, a data API, Telegram or a channel must never spin: each failure
waits `Backoff.delay()` (full jitter: uniform in [0, min(max_s, base_s * 2**(n-1))], after the
AWS architecture blog), with a floor so a failure that answers instantly still cannot make a
hot loop. And a failure that repeats is logged once per interval, not once per attempt:
`RepeatLog` prints the first occurrence at once, then at most one line per interval carrying
how many were suppressed, and one line when the loop recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def full_jitter(attempt: int, base_s: float, max_s: float, rng: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(max_s, base_s * 2**(attempt-1))]."""
    return rng() * min(max_s, base_s * 2.0 ** (max(attempt, 1) - 1))


@dataclass
class Backoff:
    """Delays between attempts of one retry loop; `reset()` after a success."""

    base_s: float = 0.5
    max_s: float = 60.0
    floor_s: float = 0.1  # never less than this, whatever the jitter drew
    rng: Callable[[], float] = field(default=random.random, repr=False)
    failures: int = 0

    def delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self.failures += 1
        return max(self.floor_s, full_jitter(self.failures, self.base_s, self.max_s, self.rng))

    def reset(self) -> None:
        self.failures = 0

    async def wait(self, stop: asyncio.Event | None = None) -> float:
        """Sleep the next delay (cut short when `stop` is set); returns the delay drawn."""
        seconds = self.delay()
        if stop is None:
            await asyncio.sleep(seconds)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
        return seconds


@dataclass
class _Repeat:
    first_at: float
    logged_at: float
    count: int = 1
    suppressed: int = 0


class RepeatLog:
    """Log a repeated failure once per interval per key, not once per attempt.

    `failure(key, event, **fields)` logs the first occurrence of `key`, then stays quiet until
    `interval_s` passed, when it logs again with `repeated` (failures since the first) and
    `suppressed` (lines not printed since the last). `recovered(key, event)` logs once when a
    failing key works again. Returns whether a line was written (tests count them).
    """

    def __init__(
        self,
        logger: Any,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._open: dict[str, _Repeat] = {}
        self.lines = 0

    def failure(self, key: str, event: str, level: str = "warning", **fields: Any) -> bool:
        now = self.clock()
        state = self._open.get(key)
        if state is None:
            self._open[key] = _Repeat(first_at=now, logged_at=now)
            self._emit(level, event, fields)
            return True
        state.count += 1
        if now - state.logged_at < self.interval_s:
            state.suppressed += 1
            return False
        fields = {
            **fields,
            "repeated": state.count,
            "suppressed": state.suppressed,
            "failing_for_s": round(now - state.first_at, 1),
        }
        state.logged_at, state.suppressed = now, 0
        self._emit(level, event, fields)
        return True

    def recovered(self, key: str, event: str, **fields: Any) -> bool:
        state = self._open.pop(key, None)
        if state is None:
            return False
        self._emit(
            "info",
            event,
            {
                **fields,
                "failures": state.count,
                "failing_for_s": round(self.clock() - state.first_at, 1),
            },
        )
        return True

    def failing(self, key: str) -> bool:
        return key in self._open

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self.lines += 1
        getattr(self.logger, level)(event, **fields)


__all__ = ["Backoff", "RepeatLog", "full_jitter"]
