"""Leader election with a Redis lease: one replica acts, the others are hot standbys.

The leader holds `{ns}:leader:{name}` (SET NX PX lease) and renews it every lease/3 with a
compare-and-extend script. Its own view of the lease ends `lease` after the moment it sent the
last successful SET/extend (measured before the call, so the local deadline is never later
than Redis' expiry): when a renewal fails or that deadline passes, it stops acting at once.
Standbys try to take the key every poll interval, so a dead leader is replaced within
about lease + poll seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from quantcore.logging import get_logger

log = get_logger(component="leader")

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def leader_key(namespace: str, name: str) -> str:
    return f"{namespace}:leader:{name}"


class LeaderLease:
    def __init__(
        self, redis: Redis, namespace: str, name: str, instance: str, lease_s: float
    ) -> None:
        self.redis = redis
        self.key = leader_key(namespace, name)
        self.instance = instance
        self.lease_s = lease_s
        self.valid_until = 0.0  # time.monotonic() deadline of our own view of the lease

    @property
    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    async def try_acquire(self) -> bool:
        sent = time.monotonic()
        ok = await self.redis.set(self.key, self.instance, nx=True, px=int(self.lease_s * 1000))
        if ok:
            self.valid_until = sent + self.lease_s
        return bool(ok)

    async def renew(self) -> bool:
        sent = time.monotonic()
        ok = await self.redis.eval(_EXTEND, 1, self.key, self.instance, int(self.lease_s * 1000))
        if ok:
            self.valid_until = sent + self.lease_s
        else:
            self.valid_until = 0.0
        return bool(ok)

    async def release(self) -> None:
        self.valid_until = 0.0
        await self.redis.eval(_RELEASE, 1, self.key, self.instance)

    async def current(self) -> str | None:
        raw = await self.redis.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def run(
        self,
        stop: asyncio.Event,
        lead: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
        poll_s: float | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """Stand by until the lease is won, then run `lead(lost)` while it is held.

        `lead` gets an event set when leadership ends; the task is also cancelled then, so
        no work continues after the lease is gone. Returns when `stop` is set."""
        poll = poll_s if poll_s is not None else max(min(self.lease_s / 5, 1.0), 0.1)
        renew_every = self.lease_s / 3
        while not stop.is_set():
            try:
                won = await self.try_acquire()
            except Exception as exc:
                log.warning("leader lease: acquire failed", key=self.key, error=str(exc)[:200])
                won = False
            if not won:
                await _sleep(stop, poll)
                continue
            log.info("leadership acquired", key=self.key, instance=self.instance)
            if on_change:
                on_change(True)
            lost = asyncio.Event()
            task = asyncio.create_task(lead(lost), name=f"lead:{self.key}")
            try:
                await self._hold(stop, task, renew_every)
            finally:
                lost.set()
                finished = task.done()  # by itself: returned or crashed, lease still ours
                crashed = finished and not task.cancelled() and task.exception() is not None
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                if on_change:
                    on_change(False)
            if stop.is_set() or finished:
                with contextlib.suppress(Exception):
                    await self.release()  # hand over at once rather than at expiry
                if crashed:
                    raise RuntimeError("leader work failed") from task.exception()
                return
            log.warning("leadership lost", key=self.key, instance=self.instance)

    async def _hold(self, stop: asyncio.Event, task: asyncio.Task[None], every: float) -> None:
        next_renew = time.monotonic() + every
        while not stop.is_set() and not task.done():
            # wake for the renewal, or at the lease deadline if renewals keep failing
            wake = min(next_renew, self.valid_until)
            await _sleep(stop, max(wake - time.monotonic(), 0.0), task)
            if stop.is_set() or task.done():
                return
            if not self.held:
                return
            if time.monotonic() >= next_renew:
                try:
                    if not await asyncio.wait_for(self.renew(), timeout=max(every, 0.5)):
                        return  # someone else holds it now
                    next_renew = time.monotonic() + every
                except Exception as exc:
                    log.warning("leader lease: renewal failed", key=self.key, error=str(exc)[:200])
                    next_renew = time.monotonic() + min(every / 3, 1.0)


async def _sleep(
    stop: asyncio.Event, seconds: float, task: asyncio.Task[None] | None = None
) -> None:
    waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(stop.wait())}
    if task is not None:
        waiters.add(task)  # type: ignore[arg-type]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            if w is not task:
                w.cancel()
