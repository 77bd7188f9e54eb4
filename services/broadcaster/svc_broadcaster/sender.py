"""One channel's sender: every replica runs one per enabled channel; the outbox and the
shared limiter make them one sender as seen from outside.

A step: housekeeping when due (stale claims of dead replicas, stale messages), then if
messages are due take a send slot from the shared limiter. When the queue is no longer than
what the limit still allows, the oldest message goes alone; otherwise the oldest ones that fit
into one message go as a digest. Transient errors are retried with backoff, a 429 pauses the
channel on every replica for as long as the provider said; a permanent error fails the message,
and when it concerns the whole channel (bad token, blocked bot) the channel rests for
BROADCAST_CHANNEL_DOWN_S with one alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.backoff import RepeatLog
from quantcore.config import Settings
from quantcore.logging import get_logger
from svc_broadcaster import outbox
from svc_broadcaster.channels.base import Permanent, RateLimited, Sender, Transient
from svc_broadcaster.limiter import SharedLimiter
from svc_broadcaster.messages import mode_banner
from svc_broadcaster.outbox import Claimed, Record
from svc_broadcaster.templates import ChannelTemplates, Rendered

HOUSEKEEPING_S = 2.0
Alert = Callable[[str, str], Awaitable[None]]  # (channel, reason): journal + log, once


def down_key(namespace: str, channel: str) -> str:
    return f"{namespace}:broadcast:down:{channel}"


@dataclass
class WorkerStats:
    sent: int = 0
    digests: int = 0
    digested: int = 0
    failed: int = 0
    skipped: int = 0
    rate_limited: int = 0
    retries: int = 0


def _kinds(items: list[Claimed]) -> str:
    names = {"signal": "signal", "entry": "entry", "stop_moved": "stop move", "exit": "exit",
             "daily": "daily digest"}  # fmt: skip
    counts = Counter(i.event_type for i in items)
    return ", ".join(f"{n} {names.get(k, k)}{'s' if n > 1 else ''}" for k, n in counts.items())


class ChannelWorker:
    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool, redis: Redis, sender: Sender,
        templates: ChannelTemplates, agent: str, alert: Alert,
    ) -> None:  # fmt: skip
        self.s = settings
        self.pool = pool
        self.redis = redis
        self.sender = sender
        self.channel = sender.name
        self.tpl = templates
        self.agent = agent
        self.alert = alert
        windows = settings.parse_rate_windows(getattr(settings, f"broadcast_{self.channel}_rate"))
        self.limiter = SharedLimiter(redis, settings.bus_namespace, self.channel, windows)
        self.down_key = down_key(settings.bus_namespace, self.channel)
        self.wake = asyncio.Event()
        self.stats = WorkerStats()
        self.log = get_logger(component="sender", channel=self.channel)
        self.repeats = RepeatLog(self.log, interval_s=60.0)  # a provider outage: a line a minute
        self._next_housekeeping = 0.0
        codes = {
            "bybit": settings.bybit_ref_code or "",
            "coinglass": settings.coinglass_ref_code or "",
        }
        carries = {c.strip() for c in settings.broadcast_affiliate_channels.split(",")}
        self.affiliate = templates.affiliate_text(codes) if self.channel in carries else ""
        self.mode = mode_banner(settings.trading_mode, settings.data_source)

    # --- loop ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                busy = await self.step(stop)
            except Exception:
                self.log.exception("sender step failed; going on")
                busy = False
            if not busy:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._either(stop), timeout=self.s.broadcast_poll_s)

    async def _either(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def step(self, stop: asyncio.Event | None = None) -> bool:
        """One round; returns whether there may be more to do right away."""
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_S
            await self.housekeeping()
        limit = self.s.broadcast_digest_max_items
        async with self.pool.connection() as conn:
            due = await outbox.due_count(conn, self.channel, limit + 1)
        if due == 0:
            return False
        reason = await self.redis.get(self.down_key)
        if reason is not None:
            text = reason.decode() if isinstance(reason, bytes) else str(reason)
            await self.skip_all(f"channel down after a permanent error: {text}")
            return False
        grant = await self.limiter.take()
        if not grant.granted:
            wait = min(max(grant.wait_s, 0.01), 5.0)
            if stop is None:
                await asyncio.sleep(wait)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            return True
        n = 1 if due <= 1 + grant.left else limit
        token = uuid.uuid4()
        async with self.pool.connection() as conn:
            items = await outbox.claim(conn, self.channel, n, token, self.s.instance,
                                       self.s.broadcast_claim_timeout_s)  # fmt: skip
        if items:
            await self.deliver(items, token, as_digest=n > 1)
        return True

    # --- one message -----------------------------------------------------------------------------

    def compose(
        self, items: list[Claimed], as_digest: bool
    ) -> tuple[list[Claimed], Rendered, bool]:
        """The text for the claimed items: alone, or the oldest that fit as one digest."""
        if not as_digest or len(items) == 1:
            it = items[0]
            return [it], self.tpl.render(it.event_type, it.fields, self.affiliate), False
        kept: list[Claimed] = []
        lines: list[str] = []
        for it in items:
            line = self.tpl.line(it.event_type, it.fields)
            if kept and not self.tpl.digest_fits([*lines, line], _kinds([*kept, it]), self.mode,
                                                 self.affiliate):  # fmt: skip
                break
            kept.append(it)
            lines.append(line)
        if len(kept) == 1:
            it = kept[0]
            return kept, self.tpl.render(it.event_type, it.fields, self.affiliate), False
        return kept, self.tpl.digest(lines, _kinds(kept), self.mode, self.affiliate), True

    async def deliver(self, items: list[Claimed], token: uuid.UUID, as_digest: bool) -> None:
        kept, rendered, is_digest = self.compose(items, as_digest)
        digest_id = uuid.uuid4() if is_digest else None
        async with self.pool.connection() as conn, conn.transaction():
            rest = [i.dedup_key for i in items[len(kept) :]]
            if rest:
                await outbox.release(conn, self.channel, token, rest)
            started = await outbox.mark_sending(conn, self.channel, token, digest_id,
                                                self.s.broadcast_claim_timeout_s)  # fmt: skip
        if started == 0:
            self.log.warning("claim lost before sending (taken for dead); not sent")
            return
        key = f"digest:{digest_id}" if digest_id else kept[0].dedup_key
        attempt = max(i.attempts for i in kept) + 1
        try:
            provider_id = await self.sender.send(rendered.text, rendered.subject, key)
        except RateLimited as exc:
            await self.on_rate_limited(kept, token, digest_id, exc, attempt)
        except Transient as exc:
            await self.on_transient(kept, token, digest_id, exc, attempt)
        except Permanent as exc:
            await self.on_permanent(kept, token, digest_id, exc, attempt)
        else:
            await self.on_sent(kept, token, digest_id, provider_id, rendered.text, attempt)

    async def on_sent(
        self, items: list[Claimed], token: uuid.UUID, digest_id: uuid.UUID | None,
        provider_id: str, text: str, attempt: int,
    ) -> None:  # fmt: skip
        self.repeats.recovered("transient", "sends work again")
        self.repeats.recovered("rate_limited", "provider accepts sends again")
        records: list[Record] = []
        if digest_id is None:
            it = items[0]
            records.append(Record(it.event_id, it.event_type, self.channel, "sent", self.agent,
                                  attempt, provider_id, text=text, vertical=it.vertical,
                                  correlation_id=it.correlation_id))  # fmt: skip
            self.stats.sent += 1
        else:
            records.append(Record(digest_id, "digest", self.channel, "sent", self.agent, attempt,
                                  provider_id, text=text, vertical="system",
                                  broadcast_id=digest_id))  # fmt: skip
            records += [
                Record(it.event_id, it.event_type, self.channel, "digested", self.agent, attempt,
                       provider_id, digest_id=digest_id, vertical=it.vertical,
                       correlation_id=it.correlation_id)
                for it in items
            ]  # fmt: skip
            self.stats.digests += 1
            self.stats.digested += len(items)
        async with self.pool.connection() as conn, conn.transaction():
            await outbox.finish(conn, self.channel, token, "digested" if digest_id else "sent",
                                provider_id)  # fmt: skip
            await outbox.record(conn, records)

    async def on_rate_limited(
        self, items: list[Claimed], token: uuid.UUID, digest_id: uuid.UUID | None,
        exc: RateLimited, attempt: int,
    ) -> None:  # fmt: skip
        wait = max(exc.retry_after_s, 0.0)
        await self.limiter.pause(wait)
        self.stats.rate_limited += 1
        self.repeats.failure("rate_limited", "provider asked us to slow down; channel paused",
                             retry_after_s=wait, error=str(exc)[:200])  # fmt: skip
        first = items[0]
        rec = Record(digest_id or first.event_id, "digest" if digest_id else first.event_type,
                     self.channel, "rate_limited", self.agent, attempt, error=str(exc)[:500],
                     vertical=first.vertical, correlation_id=first.correlation_id)  # fmt: skip
        async with self.pool.connection() as conn, conn.transaction():
            await outbox.retry_later(conn, self.channel, token, wait, f"rate limited: {exc}")
            await outbox.record(conn, [rec])

    def backoff(self, attempt: int) -> float:
        delay: float = min(
            self.s.broadcast_retry_max_s, self.s.broadcast_retry_base_s * 2.0 ** (attempt - 1)
        )
        return delay * (0.5 + random.random() / 2)  # equal jitter: replicas spread out

    async def on_transient(
        self, items: list[Claimed], token: uuid.UUID, digest_id: uuid.UUID | None,
        exc: Transient, attempt: int,
    ) -> None:  # fmt: skip
        if attempt >= self.s.broadcast_max_attempts:
            self.log.error(
                "send failed after every attempt", attempts=attempt, error=str(exc)[:300]
            )
            await self.fail(
                items, token, digest_id, f"gave up after {attempt} attempts: {exc}", attempt
            )
            return
        delay = self.backoff(attempt)
        self.stats.retries += 1
        self.repeats.failure("transient", "send failed, will retry", attempt=attempt,
                             retry_in_s=round(delay, 2), error=str(exc)[:300])  # fmt: skip
        async with self.pool.connection() as conn:
            await outbox.retry_later(conn, self.channel, token, delay, str(exc))

    async def on_permanent(
        self, items: list[Claimed], token: uuid.UUID, digest_id: uuid.UUID | None,
        exc: Permanent, attempt: int,
    ) -> None:  # fmt: skip
        await self.fail(items, token, digest_id, f"permanent: {exc}", attempt)
        if exc.channel_wide:
            await self.go_down(str(exc))
        else:
            self.log.error("message refused by the provider; not retried", error=str(exc)[:300])

    async def fail(
        self, items: list[Claimed], token: uuid.UUID, digest_id: uuid.UUID | None, error: str,
        attempt: int,
    ) -> None:  # fmt: skip
        records = [
            Record(it.event_id, it.event_type, self.channel, "failed", self.agent, attempt,
                   error=error[:2000], digest_id=digest_id, vertical=it.vertical,
                   correlation_id=it.correlation_id)
            for it in items
        ]  # fmt: skip
        self.stats.failed += len(items)
        async with self.pool.connection() as conn, conn.transaction():
            await outbox.finish(conn, self.channel, token, "failed", error=error[:2000])
            await outbox.record(conn, records)

    async def go_down(self, reason: str) -> None:
        """Rest the channel (every replica) and alert once per rest period."""
        first = await self.redis.set(self.down_key, reason[:500].encode(), nx=True,
                                     px=int(self.s.broadcast_channel_down_s * 1000))  # fmt: skip
        if first:
            await self.alert(self.channel, reason)

    # --- housekeeping ----------------------------------------------------------------------------

    async def skip_all(self, reason: str, older_than_s: float | None = None) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            skipped = await outbox.skip_pending(conn, self.channel, reason, older_than_s)
            await outbox.record(conn, [
                Record(it.event_id, it.event_type, self.channel, "skipped", self.agent,
                       it.attempts, error=reason, vertical=it.vertical,
                       correlation_id=it.correlation_id)
                for it in skipped
            ])  # fmt: skip
        if skipped:
            self.stats.skipped += len(skipped)
            self.log.warning("messages skipped", count=len(skipped), reason=reason[:200])
        return len(skipped)

    async def housekeeping(self) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            returned, doubtful = await outbox.resolve_stale_claims(
                conn, self.channel, self.sender.resend_in_doubt
            )
            await outbox.record(conn, [
                Record(it.event_id, it.event_type, self.channel, "failed", self.agent,
                       it.attempts, error=outbox.IN_DOUBT, digest_id=digest_id,
                       vertical=it.vertical, correlation_id=it.correlation_id)
                for it, digest_id in doubtful
            ])  # fmt: skip
        if returned:
            self.log.warning("claims of a stopped replica taken back", count=returned)
        if doubtful:
            self.stats.failed += len(doubtful)
            self.log.error("sends interrupted by a stopped replica; recorded in doubt",
                           count=len(doubtful))  # fmt: skip
        stale = self.s.broadcast_stale_after_s
        await self.skip_all(f"stale: not sent within {stale:g} s", older_than_s=stale)
