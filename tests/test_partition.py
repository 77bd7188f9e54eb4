"""Work split between replicas: every coin owned exactly once, stable when replicas come and go,
and per-cycle claims that let exactly one replica do an item."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from quantcore.partition import WorkSplit, owner, split
from quantcore.service import heartbeat_key

coins = st.lists(
    st.from_regex(r"[A-Z]{2,6}USDT", fullmatch=True), min_size=1, max_size=80, unique=True
)
members = st.lists(
    st.from_regex(r"host[0-9]{1,3}:[0-9]{1,5}", fullmatch=True), min_size=1, max_size=6, unique=True
)


@given(coins, members)
def test_every_coin_has_exactly_one_owner(items: list[str], ms: list[str]) -> None:
    parts = split(items, ms)
    flat = [c for part in parts.values() for c in part]
    assert sorted(flat) == sorted(items)


@given(coins, members)
def test_owner_does_not_depend_on_member_order(items: list[str], ms: list[str]) -> None:
    assert all(owner(c, ms) == owner(c, list(reversed(ms))) for c in items)


@given(coins, members, st.data())
def test_a_dying_replica_only_moves_its_own_coins(
    items: list[str], ms: list[str], data: st.DataObject
) -> None:
    if len(ms) < 2:
        return
    dead = data.draw(st.sampled_from(ms))
    after = [m for m in ms if m != dead]
    for c in items:
        if owner(c, ms) != dead:
            assert owner(c, after) == owner(c, ms)


async def test_members_come_from_live_heartbeats_and_claims_are_exclusive(
    redis: Redis, settings: object
) -> None:
    ns = f"part-{uuid.uuid4().hex[:6]}"
    await redis.set(heartbeat_key(ns, "svc", "a:1"), "{}", ex=30)
    await redis.set(heartbeat_key(ns, "svc", "b:2"), "{}", ex=30)
    a = WorkSplit(redis, ns, "svc", "a:1")
    b = WorkSplit(redis, ns, "svc", "b:2")
    assert await a.members() == ["a:1", "b:2"]
    items = [f"C{i}USDT" for i in range(40)]
    mine_a, mine_b = await a.mine(items), await b.mine(items)
    assert sorted(mine_a + mine_b) == sorted(items)
    assert mine_a and mine_b
    won_a = await a.claim("job", 7, items, ttl_s=5)
    won_b = await b.claim("job", 7, items, ttl_s=5)
    assert sorted(won_a) == sorted(items) and won_b == []  # first claimer wins, once
    assert await b.claim("job", 8, items[:3], ttl_s=5) == items[:3]  # a new cycle is free again
    assert await a.unclaimed("job", 8, items[:5]) == items[3:5]
    async for key in redis.scan_iter(match=f"{ns}:*"):
        await redis.delete(key)
