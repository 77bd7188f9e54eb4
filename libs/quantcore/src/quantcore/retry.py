"""Retries with full-jitter exponential backoff (AWS architecture blog), Freqtrade-style: only
TemporaryError is retried; RateLimited waits at least what the venue asked for."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from quantcore.backoff import full_jitter
from quantcore.errors import RateLimited, TemporaryError
from quantcore.logging import get_logger

T = TypeVar("T")
log = get_logger(component="retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(max_s, base_s * 2**(attempt-1))] (quantcore.backoff)."""
    return full_jitter(attempt, base_s, max_s, rng)


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base_s: float,
    max_s: float,
    retry_on: tuple[type[BaseException], ...] = (TemporaryError,),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    what: str = "call",
) -> T:
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    attempt = 1
    while True:
        try:
            return await fn()
        except retry_on as exc:
            if attempt >= attempts:
                raise
            delay = backoff_delay(attempt, base_s, max_s, rng)
            if isinstance(exc, RateLimited):
                # the venue's wait is a floor; the jitter on top spreads our callers out
                delay = exc.retry_after_s + delay
            log.warning(
                "retrying", what=what, attempt=attempt, of=attempts, delay_s=round(delay, 3),
                error=f"{type(exc).__name__}: {exc}"[:300],
            )  # fmt: skip
            await sleep(delay)
            attempt += 1


async def retry_with(policy: RetryPolicy, fn: Callable[[], Awaitable[T]], what: str) -> T:
    return await retry(
        fn, attempts=policy.attempts, base_s=policy.base_s, max_s=policy.max_s,
        sleep=policy.sleep, what=what,
    )  # fmt: skip
