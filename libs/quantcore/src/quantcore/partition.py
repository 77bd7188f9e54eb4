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

import hashlib
from collections.abc import Iterable, Sequence

from redis.asyncio import Redis

from quantcore.service import heartbeat_key


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
