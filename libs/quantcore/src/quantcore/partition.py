"""Splitting per-coin work between the replicas of one service.

Two mechanisms, used together:

- **Ownership** (rendezvous hashing over the live replicas): every replica lists the live
  instances of its service from their heartbeat keys and computes the same owner for each
  coin, so the split is balanced and moves as few coins as possible when a replica joins or
  dies (its heartbeat key expires after HEARTBEAT_TTL_S).
- **Claims** (one Redis `SET NX` per item and cycle): before doing an item in a cycle a
  replica claims it, so even while two replicas briefly disagree about who is alive, an item
  is done once per cycle. Late in a cycle each replica sweeps items nobody claimed (their
  owner died), so a dead replica's coins are taken over within the same cycle.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from quantcore.collect.cycles import cycle_start, sleep_until
from quantcore.service import heartbeat_key

SWEEP_AT = 0.3  # share of the cycle after which items nobody claimed (owner died) are taken over


def _weight(member: str, item: str) -> int:
    digest = hashlib.blake2b(f"{member}\x00{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(item: str, members: Sequence[str]) -> str:
    """The member that owns `item` (highest random weight). Same answer on every replica."""
    if not members:
        raise ValueError("no members to own anything")
    return max(members, key=lambda m: (_weight(m, item), m))


def split(items: Iterable[str], members: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {m: [] for m in members}
    for item in items:
        out[owner(item, members)].append(item)
    return out


class WorkSplit:
    """One replica's view of its service's work split."""

    def __init__(self, redis: Redis, namespace: str, service: str, instance: str) -> None:
        self.redis = redis
        self.namespace = namespace
        self.service = service
        self.instance = instance

    async def members(self) -> list[str]:
        """Live instances of this service (fresh heartbeat keys), always including this one."""
        prefix = heartbeat_key(self.namespace, self.service, "")
        found = {self.instance}
        async for key in self.redis.scan_iter(match=prefix + "*", count=500):
            found.add(key.decode()[len(prefix) :] if isinstance(key, bytes) else key[len(prefix) :])
        return sorted(found)

    async def mine(self, items: Iterable[str]) -> list[str]:
        members = await self.members()
        return [i for i in items if owner(i, members) == self.instance]

    def _claim_key(self, job: str, cycle: int, item: str) -> str:
        return f"{self.namespace}:claim:{self.service}:{job}:{cycle}:{item}"

    async def claim(self, job: str, cycle: int, items: Sequence[str], ttl_s: float) -> list[str]:
        """Claim items for this cycle; returns those this replica won (first claimer wins)."""
        if not items:
            return []
        ttl_ms = max(int(ttl_s * 1000), 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.set(self._claim_key(job, cycle, item), self.instance, nx=True, px=ttl_ms)
            won = await pipe.execute()
        return [item for item, ok in zip(items, won, strict=True) if ok]

    async def unclaimed(self, job: str, cycle: int, items: Sequence[str]) -> list[str]:
        if not items:
            return []
        values = await self.redis.mget([self._claim_key(job, cycle, i) for i in items])
        return [i for i, v in zip(items, values, strict=True) if v is None]


@dataclass
class WorkDone:
    """What one replica did in a cycle: coins, summed figures, seconds spent working (the
    wait for the sweep not counted)."""

    coins: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, coins: list[str], figures: dict[str, int], seconds: float) -> None:
        self.coins += coins
        self.seconds += seconds
        for k, v in figures.items():
            self.totals[k] = self.totals.get(k, 0) + v


async def split_work(
    split: WorkSplit,
    job: str,
    cycle: int,
    interval_s: float,
    universe: Sequence[str],
    stop: asyncio.Event,
    work: Callable[[list[str]], Awaitable[dict[str, int]]],
) -> WorkDone:
    """Do `work` on this replica's coins for the cycle (each coin claimed once per cycle),
    then, SWEEP_AT into the cycle, on coins nobody claimed."""
    ttl = interval_s * 2
    done = WorkDone()

    async def run(coins: list[str]) -> None:
        started = time.monotonic()
        figures = await work(coins)
        done.add(coins, figures, time.monotonic() - started)

    mine = await split.mine(universe)
    won = await split.claim(job, cycle, mine, ttl_s=ttl)
    if won:
        await run(won)
    if await sleep_until(cycle_start(cycle, interval_s) + interval_s * SWEEP_AT, stop):
        orphans = await split.unclaimed(job, cycle, list(universe))
        taken = await split.claim(job, cycle, orphans, ttl_s=ttl)
        if taken:
            await run(taken)
    return done
