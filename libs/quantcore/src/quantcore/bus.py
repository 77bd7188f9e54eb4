"""The bus: Redis Streams for work that must not be lost or done twice; pub/sub for fan-out.

Streams (`{ns}:stream:{name}`):
- `publish` appends an envelope. Streams are capped at about `maxlen` entries, but capping
  never removes an entry that a consumer group has not acknowledged: every few publishes the
  publisher trims only entries older than the oldest pending or undelivered entry of every
  group (`trim`, one Lua script, so the floor and the trim are atomic). A stream whose
  un-acknowledged backlog grows past `backlog_limit` raises an alarm (logged once per
  interval) and slows its publishers down (back-pressure, bounded wait; nothing is dropped).
- A `Consumer` reads through a consumer group (replicas share the work), calls the handler
  and XACKs only after the handler returned, i.e. after its effect is durable. Effects must
  be idempotent: a message can be delivered again after a crash.
- Entries left pending by a dead consumer are taken over with XAUTOCLAIM once idle for
  BUS_CLAIM_IDLE_MS. While a live consumer's handler is still working on a batch, it keeps
  its entries' idle time fresh (XCLAIM JUSTID, only entries it still owns), so a slow batch
  is not taken over and done twice by another replica; a handler stuck past ten claim
  intervals stops renewing and its entries are taken over as a dead consumer's would be.
- A message that fails validation, or fails BUS_MAX_DELIVERIES times, is moved to the
  dead-letter stream (`{ns}:stream:deadletter`) with the reason, and acked: the consumer
  keeps going.

Pub/sub (`{ns}:fanout:{channel}`) is best effort: a listener that is down misses messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from quantcore.backoff import Backoff, RepeatLog
from quantcore.logging import (
    correlation,
    current_correlation_id,
    get_logger,
    new_correlation_id,
)
from quantcore.model.events import EVENT_TYPES, Envelope, Event

log = get_logger(component="bus")

DEADLETTER = "deadletter"
_FIELD = b"e"

# Trim a stream to about `maxlen` entries, removing only entries that every consumer group has
# acknowledged: the floor is the oldest pending entry or the first undelivered one (after
# last-delivered-id) of every group; nothing at or after the floor is touched. Atomic in Redis,
# so no group can read or claim between computing the floor and trimming. A stream without
# groups is capped plainly. At most ARGV[2] entries go per call.
# Returns {removed, length after, floor id or ''}.
_SAFE_TRIM = """
local key = KEYS[1]
local maxlen = tonumber(ARGV[1])
local chunk = tonumber(ARGV[2])
local len = redis.call('XLEN', key)
if len <= maxlen then return {0, len, ''} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local floor = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  local cand = nil
  if tonumber(f['pending']) > 0 then
    cand = redis.call('XPENDING', key, f['name'])[2]
  end
  local nxt = redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', 1)
  if #nxt > 0 and (cand == nil or less(nxt[1][1], cand)) then cand = nxt[1][1] end
  if cand ~= nil and (floor == nil or less(cand, floor)) then floor = cand end
end
local upto = '+'
if floor ~= nil then upto = '(' .. floor end
local excess = math.min(len - maxlen, chunk)
local old = redis.call('XRANGE', key, '-', upto, 'COUNT', excess)
local removed = 0
if #old > 0 then removed = redis.call('XTRIM', key, 'MAXLEN', '=', len - #old) end
return {removed, len - removed, floor or ''}
"""


# Reset the idle time of the entries this consumer still owns (a live consumer's batch in
# progress), leaving alone any another consumer has taken meanwhile. JUSTID: the delivery count
# is not raised. Returns how many were renewed.
_KEEP_CLAIMED = """
local renewed = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""


@dataclass(frozen=True)
class Trimmed:
    """What one `Bus.trim` did: entries removed, the length left, and the oldest entry some
    consumer group still needs (None: no group holds anything back)."""

    removed: int
    length: int
    floor: str | None


def stream_key(namespace: str, name: str) -> str:
    return f"{namespace}:stream:{name}"


def fanout_key(namespace: str, channel: str) -> str:
    return f"{namespace}:fanout:{channel}"


@dataclass(frozen=True)
class Delivery:
    """One message handed to a handler: the Redis entry id, its envelope and typed event."""

    message_id: str
    envelope: Envelope
    event: Event
    attempt: int

    def bound(self) -> contextlib.AbstractContextManager[str]:
        """Bind this message's correlation id (logs, events published) while a batch handler
        works on it: `for d in deliveries: with d.bound(): ...`."""
        return correlation(self.envelope.correlation_id)


Entry = tuple[Any, dict[bytes, bytes]]
Handler = Callable[[list[Delivery]], Awaitable[None]]


class Bus:
    def __init__(
        self,
        redis: Redis,
        namespace: str,
        source: str,
        maxlen: int = 100_000,
        *,
        backlog_limit: int | None = None,
        backpressure_max_wait_s: float = 5.0,
        alarm_interval_s: float = 60.0,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.source = source
        self.maxlen = maxlen
        # un-acknowledged entries past this length: alarm + back-pressure (default 5x the cap)
        self.backlog_limit = max(backlog_limit or 5 * maxlen, maxlen)
        self.backpressure_max_wait_s = backpressure_max_wait_s
        # trim every `trim_every` entries appended by this publisher to a stream
        self.trim_every = max(1, min(maxlen // 20, 5_000))
        self._appended: dict[str, int] = {}
        self._trim = redis.register_script(_SAFE_TRIM)
        self._renew = redis.register_script(_KEEP_CLAIMED)
        self.alarms = RepeatLog(log, interval_s=alarm_interval_s)
        self.backpressure_waits = 0

    def key(self, stream: str) -> str:
        return stream_key(self.namespace, stream)

    def envelope(self, event: Event, correlation_id: str | None = None) -> Envelope:
        # The event was validated when it was built; constructing the envelope without
        # re-validation saves a third of the publish cost. Consumers validate what they read.
        return Envelope.model_construct(
            id=uuid.uuid4(),
            type=event.TYPE,
            version=event.VERSION,
            time=datetime.now(UTC),
            source=self.source,
            correlation_id=correlation_id or current_correlation_id() or new_correlation_id(),
            payload=event.model_dump(mode="json"),
        )

    async def publish(
        self, stream: str, event: Event, correlation_id: str | None = None
    ) -> Envelope:
        """Append an event; the correlation id defaults to the one being handled now."""
        env = self.envelope(event, correlation_id)
        await self.redis.xadd(self.key(stream), {_FIELD: env.model_dump_json().encode()})
        await self._appended_to(stream, 1)
        return env

    async def publish_many(
        self, stream: str, events: Sequence[Event], correlation_id: str | None = None
    ) -> list[Envelope]:
        envs = [self.envelope(e, correlation_id) for e in events]
        async with self.redis.pipeline(transaction=False) as pipe:
            for env in envs:
                pipe.xadd(self.key(stream), {_FIELD: env.model_dump_json().encode()})
            await pipe.execute()
        await self._appended_to(stream, len(envs))
        return envs

    async def trim(self, stream: str, chunk: int = 10_000) -> Trimmed:
        """Cap `stream` at about `maxlen`, never removing what a consumer group still needs."""
        removed, length, floor = await self._trim(
            keys=[self.key(stream)], args=[self.maxlen, chunk]
        )
        floor_id = _id(floor) or None
        return Trimmed(int(removed), int(length), floor_id)

    async def _appended_to(self, stream: str, n: int) -> None:
        count = self._appended.get(stream, 0) + n
        if count < self.trim_every:
            self._appended[stream] = count
            return
        self._appended[stream] = 0
        try:
            trimmed = await self.trim(stream)
        except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError) as exc:
            # the entry is appended; a failed trim only delays capping to the next one
            self.alarms.failure(
                f"trim:{stream}", "stream trim failed", stream=stream, error=str(exc)[:200]
            )
            return
        if trimmed.length <= self.backlog_limit:
            if self.alarms.failing(stream):
                self.alarms.recovered(stream, "stream backlog back under its limit", stream=stream)
            return
        self.alarms.failure(
            stream,
            "stream backlog past its limit: a consumer group is not keeping up; "
            "publishers are slowed down, nothing is dropped",
            level="error",
            stream=stream,
            length=trimmed.length,
            limit=self.backlog_limit,
            oldest_unacked=trimmed.floor,
        )
        await self._backpressure(stream)

    async def _backpressure(self, stream: str) -> None:
        """Wait (bounded) for the backlog to fall under the limit before publishing more."""
        self.backpressure_waits += 1
        deadline = time.monotonic() + self.backpressure_max_wait_s
        delay = 0.05
        while time.monotonic() < deadline:
            await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            delay = min(delay * 2, 1.0)
            if (await self.trim(stream)).length <= self.backlog_limit:
                return

    async def dead_letter(
        self,
        stream: str,
        message_id: str,
        fields: dict[bytes, bytes],
        reason: str,
        error: str,
        group: str = "",
        consumer: str = "",
    ) -> None:
        raw = fields.get(_FIELD)
        record: dict[FieldT, EncodableT] = {
            "stream": stream,
            "group": group,
            "consumer": consumer,
            "message_id": message_id,
            "reason": reason,
            "error": error[:2000],
            "raw": bytes(raw if raw is not None else repr(fields).encode())[:20_000],
            "time": datetime.now(UTC).isoformat(),
        }
        await self.redis.xadd(self.key(DEADLETTER), record)
        await self._appended_to(DEADLETTER, 1)
        log.warning(
            "message dead-lettered",
            stream=stream,
            message_id=message_id,
            reason=reason,
            error=error[:300],
            raw=(raw or b"")[:200].decode("utf-8", "replace"),
        )

    async def reject(self, source: str, kind: str, raw: str | bytes, error: str) -> None:
        """Dead-letter bad EXTERNAL data (a venue payload that failed validation), with the raw
        snippet, so nothing is silently dropped and nothing garbage is stored."""
        raw_bytes = raw.encode() if isinstance(raw, str) else raw
        await self.dead_letter(
            f"external:{source}:{kind}",
            "-",
            {_FIELD: raw_bytes[:20_000]},
            "invalid_external",
            error,
        )

    async def last_id(self, stream: str) -> str:
        """The id of the newest entry of a stream ("0-0" when empty): wait_for reads after it."""
        entries = await self.redis.xrevrange(self.key(stream), count=1)
        if not entries:
            return "0-0"
        mid = entries[0][0]
        return mid.decode() if isinstance(mid, bytes) else str(mid)

    async def wait_for(
        self, stream: str, match: Callable[[Event], bool], timeout_s: float, after: str
    ) -> Event | None:
        """The first event appended after entry `after` that `match`es, or None after
        `timeout_s`. A plain XREAD (no consumer group): every waiter sees every event, nothing
        is acknowledged or taken from the stream's consumers. Undecodable entries are skipped."""
        deadline = time.monotonic() + timeout_s
        key = self.key(stream)
        while (left := deadline - time.monotonic()) > 0:
            got = cast(
                list[tuple[bytes, list[Entry]]],
                await self.redis.xread({key: after}, count=100, block=max(1, int(left * 1000))),
            )
            for _key, entries in got or []:
                for mid, fields in entries:
                    after = mid.decode() if isinstance(mid, bytes) else str(mid)
                    try:
                        env = Envelope.model_validate_json(fields[_FIELD])
                        model = EVENT_TYPES.get(env.type)
                        event = model.model_validate(env.payload) if model else None
                    except (ValidationError, KeyError):
                        continue
                    if event is not None and match(event):
                        return event
        return None

    # --- pub/sub: best effort --------------------------------------------------------------------

    async def fanout(self, channel: str, event: Event) -> int:
        """Publish to live listeners only (nobody listening → nobody gets it)."""
        env = self.envelope(event)
        return int(
            await self.redis.publish(fanout_key(self.namespace, channel), env.model_dump_json())
        )

    async def listen(self, *channels: str) -> AsyncIterator[Envelope]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*(fanout_key(self.namespace, c) for c in channels))
        try:
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None:
                    continue
                try:
                    yield Envelope.model_validate_json(msg["data"])
                except ValidationError as exc:
                    log.warning("malformed fan-out message dropped", error=str(exc)[:300])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def consumer(self, stream: str, group: str, name: str, handler: Handler, **kw: Any) -> Consumer:
        return Consumer(self, stream, group, name, handler, **kw)


class Consumer:
    """Reads one stream through a consumer group and hands typed deliveries to a batch handler."""

    def __init__(
        self,
        bus: Bus,
        stream: str,
        group: str,
        name: str,
        handler: Handler,
        *,
        batch_size: int = 256,
        block_ms: int = 500,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        claim_every_s: float | None = None,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.key = bus.key(stream)
        self.group = group
        self.name = name
        self.handler = handler
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.claim_every_s = (
            claim_every_s if claim_every_s is not None else max(claim_idle_ms / 2000, 0.05)
        )
        self._last_claim = 0.0
        self.handled = 0
        self.dead_lettered = 0

    async def ensure_group(self) -> None:
        try:
            await self.bus.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set. Redis outages are waited out (jittered back-off, logged
        once a minute), never fatal."""
        await self.ensure_group()
        try:
            await self._loop(stop)
        finally:
            await self._leave_group()

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=0.2, max_s=5.0, floor_s=0.05)
        repeats = RepeatLog(log, interval_s=60.0)
        while not stop.is_set():
            try:
                await self.poll_once()
                if backoff.failures:
                    backoff.reset()
                    repeats.recovered("redis", "redis available again", stream=self.stream)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                delay = backoff.delay()
                repeats.failure("redis", "redis unavailable, retrying", stream=self.stream,
                                error=str(exc)[:300], retry_in_s=round(delay, 2))  # fmt: skip
                await _sleep_or_stop(stop, delay)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # stream or group deleted under us: recreate
                    await self.ensure_group()
                else:
                    raise

    async def _leave_group(self) -> None:
        """On a clean stop, drop this consumer's name from the group if it holds nothing
        pending, so restarts do not pile up dead consumer names in XINFO."""
        try:
            mine = await self.bus.redis.xpending_range(
                self.key, self.group, min="-", max="+", count=1, consumername=self.name
            )
            if not mine:
                await self.bus.redis.xgroup_delconsumer(self.key, self.group, self.name)
        except Exception as exc:  # best effort: Redis may be gone at shutdown
            log.debug("could not leave consumer group", error=str(exc)[:200])

    async def poll_once(self, block_ms: int | None = None) -> int:
        """One round: reclaim stale entries when due, then read new ones. Returns messages handled."""
        done = 0
        now = time.monotonic()
        if now - self._last_claim >= self.claim_every_s:
            self._last_claim = now
            done += await self.reclaim()
        reply = await self.bus.redis.xreadgroup(
            self.group,
            self.name,
            {self.key: ">"},
            count=self.batch_size,
            block=self.block_ms if block_ms is None else block_ms,
        )
        for _stream, entries in cast(list[tuple[Any, list[Entry]]], reply or []):
            done += await self._process(entries, attempts=None)
        return done

    async def reclaim(self) -> int:
        """Take over entries idle longer than claim_idle_ms (their consumer died or is stuck)."""
        start = "0-0"
        done = 0
        for _ in range(100):  # bounded: at most 100 × batch_size entries per reclaim round
            reply = await self.bus.redis.xautoclaim(
                self.key,
                self.group,
                self.name,
                self.claim_idle_ms,
                start_id=start,
                count=self.batch_size,
            )
            start_raw, entries = reply[0], reply[1]
            start = start_raw.decode() if isinstance(start_raw, bytes) else str(start_raw)
            entries = [e for e in entries if e and e[1] is not None]
            if entries:
                ids = [_id(e[0]) for e in entries]
                pending = await self.bus.redis.xpending_range(
                    self.key,
                    self.group,
                    min=ids[0],
                    max=ids[-1],
                    count=len(ids) * 2 + 10,
                    consumername=self.name,
                )
                attempts = {_id(p["message_id"]): int(p["times_delivered"]) for p in pending}
                log.info("reclaimed stale messages", stream=self.stream, count=len(entries))
                done += await self._process(entries, attempts=attempts)
            if start == "0-0":
                break
        return done

    async def _process(self, entries: list[Entry], attempts: dict[str, int] | None) -> int:
        good: list[Delivery] = []
        for raw_id, fields in entries:
            message_id = _id(raw_id)
            attempt = (attempts or {}).get(message_id, 1)
            if attempt > self.max_deliveries:
                await self._dead(
                    message_id, fields, "max_deliveries", f"failed {attempt - 1} deliveries"
                )
                continue
            try:
                good.append(decode(message_id, fields, attempt))
            except (ValidationError, ValueError, KeyError) as exc:
                await self._dead(message_id, fields, "invalid", str(exc))
        if not good:
            return 0
        try:
            await self._handle(good)
            return len(good)
        except Exception as exc:
            if len(good) == 1:
                log.exception(
                    "handler failed; message stays pending for retry",
                    stream=self.stream,
                    message_id=good[0].message_id,
                    attempt=good[0].attempt,
                )
                return 0
            # Isolate the poison message: retry one by one, so the rest of the batch goes through.
            log.warning(
                "batch handler failed, retrying one by one",
                stream=self.stream,
                error=str(exc)[:300],
            )
            done = 0
            for delivery in good:
                try:
                    await self._handle([delivery])
                    done += 1
                except Exception:
                    log.exception(
                        "handler failed; message stays pending for retry",
                        stream=self.stream,
                        message_id=delivery.message_id,
                        attempt=delivery.attempt,
                    )
            return done

    async def _handle(self, deliveries: list[Delivery]) -> None:
        # One message: its own id. A batch: each message's id is bound by the handler around
        # its own work (Delivery.bound); no made-up id for the batch as a whole.
        keeper = asyncio.create_task(self._keep_claimed([d.message_id for d in deliveries]))
        try:
            if len(deliveries) == 1:
                with deliveries[0].bound():
                    await self.handler(deliveries)
            else:
                await self.handler(deliveries)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self.bus.redis.xack(self.key, self.group, *[d.message_id for d in deliveries])
        self.handled += len(deliveries)

    async def _keep_claimed(self, ids: list[str]) -> None:
        """While the handler works: every third of claim_idle_ms, renew the idle time of the
        entries still ours, for at most ten claim intervals (then taken for stuck)."""
        interval = self.claim_idle_ms / 3000
        deadline = time.monotonic() + 10 * self.claim_idle_ms / 1000
        while time.monotonic() + interval < deadline:
            await asyncio.sleep(interval)
            try:
                await self.bus._renew(keys=[self.key], args=[self.group, self.name, *ids])
            except (RedisConnectionError, RedisTimeoutError, OSError, ResponseError) as exc:
                log.debug("could not renew claims", stream=self.stream, error=str(exc)[:200])

    async def _dead(
        self, message_id: str, fields: dict[bytes, bytes], reason: str, error: str
    ) -> None:
        await self.bus.dead_letter(
            self.stream, message_id, fields, reason, error, self.group, self.name
        )
        await self.bus.redis.xack(self.key, self.group, message_id)
        self.dead_lettered += 1


def _id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def decode(message_id: str, fields: dict[bytes, bytes], attempt: int = 1) -> Delivery:
    """A stream entry → a typed delivery; raises ValidationError / ValueError / KeyError (the
    consumer dead-letters the entry with that reason)."""
    raw = fields.get(_FIELD)
    if raw is None:
        raise ValueError(
            f"entry has no {_FIELD.decode()!r} field (fields: {sorted(map(repr, fields))[:5]})"
        )
    env = Envelope.model_validate_json(raw)
    model = EVENT_TYPES.get(env.type)
    if model is None:
        raise ValueError(f"unknown event type {env.type!r}")
    if env.version > model.VERSION:
        raise ValueError(
            f"{env.type} v{env.version} is newer than this code understands (v{model.VERSION})"
        )
    return Delivery(message_id, env, model.model_validate(env.payload), attempt)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def parse_deadletter(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A dead-letter entry as text (for `quant status` and tests)."""
    return {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}


__all__ = [
    "DEADLETTER",
    "Bus",
    "Consumer",
    "Delivery",
    "Handler",
    "Trimmed",
    "decode",
    "fanout_key",
    "parse_deadletter",
    "stream_key",
]
