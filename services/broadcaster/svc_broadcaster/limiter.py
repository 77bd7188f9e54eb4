"""Send limits shared by every replica: sliding windows in Redis, plus a pause a provider
asked for (429 retry-after).

Each grant is a member of one sorted set per channel, scored by Redis' own clock (TIME), so
replicas on different hosts agree. A send is granted only when every window (e.g. 1 per
second AND 20 per minute) has room; the answer says how long to wait otherwise, and how many
sends the longest window still allows (the sender digests when the queue exceeds that).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {0, paused, 0} end
local maxw = 0
local maxi = 2
for i = 2, #ARGV, 2 do
    local w = tonumber(ARGV[i + 1])
    if w > maxw then maxw = w; maxi = i end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - maxw)
local wait = 0
local left = 0
for i = 2, #ARGV, 2 do
    local limit = tonumber(ARGV[i])
    local w = tonumber(ARGV[i + 1])
    local n = redis.call('ZCOUNT', KEYS[1], now - w + 1, '+inf')
    if n >= limit then
        local e = redis.call('ZRANGEBYSCORE', KEYS[1], now - w + 1, '+inf', 'WITHSCORES', 'LIMIT', n - limit, 1)
        local free_in = tonumber(e[2]) + w - now
        if free_in > wait then wait = free_in end
    elseif i == maxi then
        left = limit - n - 1
    end
end
if wait > 0 then return {0, wait, 0} end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], maxw)
return {1, 0, left}
"""


@dataclass(frozen=True)
class Grant:
    granted: bool
    wait_s: float  # when not granted: how long until a send may be granted
    left: int  # when granted: sends the longest window still allows after this one


class SharedLimiter:
    def __init__(
        self, redis: Redis, namespace: str, channel: str, windows: list[tuple[int, float]]
    ) -> None:
        self.redis = redis
        self.key = f"{namespace}:broadcast:sends:{channel}"
        self.pause_key = f"{namespace}:broadcast:pause:{channel}"
        self.windows = windows
        self._script = redis.register_script(_TAKE)

    async def take(self) -> Grant:
        args: list[str | int] = [uuid.uuid4().hex]
        for count, seconds in self.windows:
            args += [count, max(int(seconds * 1000), 1)]
        granted, wait_ms, left = await self._script(keys=[self.key, self.pause_key], args=args)
        return Grant(bool(granted), int(wait_ms) / 1000, int(left))

    async def pause(self, seconds: float) -> None:
        """Grant nothing, on every replica, for `seconds` (never shortens a longer pause)."""
        ms = max(int(seconds * 1000), 1)
        current = await self.redis.pttl(self.pause_key)
        if current < ms:
            await self.redis.set(self.pause_key, b"1", px=ms)
