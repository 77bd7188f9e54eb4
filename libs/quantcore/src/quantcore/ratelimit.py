"""Async token bucket: one per client, shared by all of its calls.

In any window of length W at most `burst + rate_per_s * W` tokens are granted. Waiters are
served in arrival order. `pause()` holds every caller (a venue asked us to back off).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_EPSILON = 1e-9


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate_per_s)
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    async def acquire(self, n: float = 1) -> None:
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens at once from a bucket of {self.burst}")
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= n - _EPSILON:  # float dust must not become a busy loop
                    self._tokens -= n
                    return
                await self._sleep((n - self._tokens) / self.rate_per_s)

    def pause(self, seconds: float) -> None:
        """Grant nothing for `seconds` from now (extends, never shortens, a running pause)."""
        now = self._clock()
        self._refill(now)
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))
        self._tokens = 0.0  # no burst right after a back-off

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())
