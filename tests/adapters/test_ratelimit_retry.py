from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from quantcore.errors import PermanentError, RateLimited, TemporaryError
from quantcore.ratelimit import TokenBucket
from quantcore.retry import retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 10),
    calls=st.lists(st.tuples(st.floats(0, 2), st.integers(1, 3)), min_size=1, max_size=60),
)
def test_bucket_never_exceeds_its_rate_over_any_window(
    rate: float, burst: int, calls: list[tuple[float, int]]
) -> None:
    t = FakeTime()
    bucket = TokenBucket(rate, burst, clock=t.clock, sleep=t.sleep)
    grants: list[tuple[float, int]] = []

    async def run() -> None:
        for gap, n in calls:
            t.now += gap
            n = min(n, burst)
            await bucket.acquire(n)
            grants.append((t.now, n))

    asyncio.run(run())
    for i, (start, _) in enumerate(grants):
        taken = 0
        for end, n in grants[i:]:
            taken += n
            assert taken <= burst + rate * (end - start) + 1e-6


async def test_concurrent_callers_share_one_bucket() -> None:
    bucket = TokenBucket(200, 5)
    started = time.monotonic()

    async def caller() -> None:
        for _ in range(10):
            await bucket.acquire()

    await asyncio.gather(*(caller() for _ in range(3)))
    assert time.monotonic() - started >= (30 - 5) / 200 * 0.9


async def test_pause_holds_every_caller() -> None:
    t = FakeTime()
    bucket = TokenBucket(100, 10, clock=t.clock, sleep=t.sleep)
    bucket.pause(600)
    assert bucket.paused_for == 600
    await bucket.acquire()
    assert t.now >= 600


def test_bucket_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="cannot take"):
        asyncio.run(TokenBucket(1, 2).acquire(3))


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_retry_uses_full_jitter_backoff_and_logs_each_retry() -> None:
    t = FakeTime()
    fn = Flaky(TemporaryError("a"), TemporaryError("b"), TemporaryError("c"))
    with capture_logs() as logs:
        out = await retry(fn, attempts=5, base_s=1, max_s=3, sleep=t.sleep, rng=lambda: 1.0)
    assert out == "ok" and fn.calls == 4
    assert t.slept == [1, 2, 3]  # base * 2**k, capped at max_s (rng=1 is the top of the jitter)
    assert [e["event"] for e in logs] == ["retrying"] * 3
    t2 = FakeTime()
    await retry(
        Flaky(TemporaryError("a")), attempts=2, base_s=1, max_s=3, sleep=t2.sleep, rng=lambda: 0.25
    )
    assert t2.slept == [0.25]


async def test_retry_honours_rate_limits() -> None:
    t = FakeTime()
    fn = Flaky(RateLimited(7.5))
    await retry(fn, attempts=2, base_s=0.1, max_s=1, sleep=t.sleep, rng=lambda: 0.5)
    assert t.slept == [7.5 + 0.05]


async def test_permanent_errors_are_raised_at_once() -> None:
    t = FakeTime()
    fn = Flaky(PermanentError("no"))
    with pytest.raises(PermanentError):
        await retry(fn, attempts=5, base_s=0.1, max_s=1, sleep=t.sleep)
    assert fn.calls == 1 and t.slept == []


async def test_last_error_is_raised_when_attempts_run_out() -> None:
    t = FakeTime()
    fn = Flaky(TemporaryError("1"), TemporaryError("2"), TemporaryError("3"))
    with pytest.raises(TemporaryError, match="2"):
        await retry(fn, attempts=2, base_s=0.1, max_s=1, sleep=t.sleep)
    assert fn.calls == 2
