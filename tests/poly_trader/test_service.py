"""poly_trader end to end on the simulator's Polymarket (real client ↔ local server speaking the
CLOB wire format ↔ real PostgreSQL and Redis): poly signals → paper orders under the caps,
exactly once across replicas and redeliveries, bad input refused or dead-lettered, gradual
exits and redemption with PnL rows and position events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.bus import Bus
from quantcore.collect import poly as collect
from quantcore.model.events import (
    STREAM_POLY_POSITIONS,
    STREAM_POLY_SIGNALS,
    Envelope,
    PolySignalFired,
)
from quantcore.service import ServiceContext
from quantcore.testing import Sandbox
from svc_poly_trader.service import PolyTrader, order_id_of, signal_key
from tests.conftest import aeventually
from tests.poly.conftest import NOW, PolySim

D = Decimal


def trader(sb: Sandbox, pool: AsyncConnectionPool, redis: Redis, sim: PolySim, name: str,
           **overrides: Any) -> PolyTrader:  # fmt: skip
    port = int(sim.url.rsplit(":", 1)[1])
    settings = sb.settings.model_copy(update={
        "service_instance": name, "data_source": "sim", "sim_host": "127.0.0.1", "sim_port": port,
        "poly_paper_equity_usd": 1000.0, "poly_risk_cap": 0.10, "poly_market_cap": 0.05,
        "poly_fee_rate_bps": 300.0, "poly_trader_interval_s": 3600.0, **overrides,
    })  # fmt: skip
    bus = Bus(redis, settings.bus_namespace, source=f"{name}@test")
    ctx = ServiceContext("poly_trader", "poly_copy", PolyTrader.version, settings, pool, redis, bus)
    return PolyTrader(ctx)


@contextlib.asynccontextmanager
async def running(*traders: PolyTrader) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(t.run(stop)) for t in traders]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def open_tokens(
    pool: AsyncConnectionPool, client: PolymarketClient, n: int
) -> list[tuple[str, str, float]]:
    """(condition, token, best ask) of one outcome with asks in each of n open markets."""
    out = []
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT condition_id, unnest(token_ids) FROM poly_markets WHERE NOT closed ORDER BY 1, 2"
        )
        rows = await cur.fetchall()
    for cond, token in rows:
        if any(cond == c for c, _, _ in out):
            continue  # one outcome per market
        book = await client.book(token)
        if book.best_ask is not None and 0.05 < book.best_ask < 0.85:
            out.append((cond, token, book.best_ask))
        if len(out) == n:
            break
    assert len(out) == n
    return out


def signal(
    cond: str, token: str, ask: float, usd: float = 40.0, at: datetime | None = None
) -> PolySignalFired:
    return PolySignalFired(
        time=at or datetime.now(UTC), condition_id=cond, token_id=token, question="Will it?",
        outcome="Yes", market_price=ask, implied_prob=min(ask + 0.1, 0.99), edge=0.08,
        criteria_met=6, criteria_total=7, passed=["smart"], smart_wallets=3,
        suggested_size_usd=usd, scanner="poly_scanner", scanner_version="test",
    )  # fmt: skip


async def decisions(pool: AsyncConnectionPool) -> dict[str, dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT signal_key, decision, reason, order_id, order_status, filled FROM poly_copy_decisions"
        )
        return {r[0]: {"decision": r[1], "reason": r[2], "order_id": r[3], "status": r[4],
                       "filled": r[5]} for r in await cur.fetchall()}  # fmt: skip


@pytest.fixture
async def collected(fresh_pool: AsyncConnectionPool, poly_client: PolymarketClient) -> None:
    await collect.collect_markets(fresh_pool, poly_client, NOW)


async def test_signals_become_capped_paper_orders_exactly_once(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="poly_scanner@test")
    picks = await open_tokens(fresh_pool, poly_client, 3)  # the simulated world's open markets
    sigs = [signal(c, t, a, usd=60.0) for c, t, a in picks]
    # a closed market, an unknown market, and a replayed signal (same key, new envelope)
    async with fresh_pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT condition_id, token_ids[1] FROM poly_markets WHERE closed LIMIT 1")).fetchone()  # fmt: skip
    assert row is not None
    closed = signal(row[0], row[1], 0.5)
    unknown = signal("0x" + "ee" * 32, "123456", 0.5)
    for s in [*sigs, closed, unknown, sigs[0]]:
        await bus.publish(STREAM_POLY_SIGNALS, s)
    bad = Envelope(type="poly.signal", version=1, source="test", correlation_id="bad",
                   payload={"condition_id": "0x12", "market_price": 7})  # fmt: skip
    await fresh_redis.xadd(bus.key(STREAM_POLY_SIGNALS), {b"e": bad.model_dump_json().encode()})

    replicas = [trader(fresh, fresh_pool, fresh_redis, poly_sim, f"pt-{i}") for i in (1, 2)]
    async with running(*replicas):
        got = await aeventually(lambda: _all_decided(fresh_pool, len(sigs) + 2), timeout=30)
        dead = await aeventually(lambda: fresh_redis.xrange(bus.key("deadletter")), timeout=10)
    assert dead, "the malformed signal was not dead-lettered"
    by_key = got
    assert by_key[signal_key(closed)]["reason"].startswith("market_closed")
    assert by_key[signal_key(unknown)]["reason"].startswith("unknown_market")
    traded = [by_key[signal_key(s)] for s in sigs if by_key[signal_key(s)]["decision"] == "traded"]
    refused = [
        by_key[signal_key(s)] for s in sigs if by_key[signal_key(s)]["decision"] == "refused"
    ]
    assert traded and refused  # market cap 50 each, total cap 100: the third is refused
    assert all("cap_reached" in r["reason"] or "below_min_size" in r["reason"] for r in refused)

    venue = replicas[0].venue
    eq = await venue.equity()
    assert eq.exposure <= D("0.10") * eq.equity, (eq.exposure, eq.equity)  # the venue's view
    for h in await venue.holdings():
        assert h.cost <= D("0.05") * eq.equity
    # the replayed signal and the second replica placed nothing twice: one fill set per order
    orders = await venue.orders()
    assert len(orders) == len(traded) == len({o.order_id for o in orders})
    first = order_id_of(signal_key(sigs[0]))
    assert await venue.fill_count(first) >= 1
    assert sum(1 for o in orders if o.order_id == first) == 1
    async with fresh_pool.connection() as conn:  # counted at the venue's fills (no key there)
        cur = await conn.execute(
            "SELECT order_id, sum(shares) FROM poly_paper_fills GROUP BY order_id"
        )
        filled_at_venue = dict(await cur.fetchall())
    assert filled_at_venue == {o.order_id: o.filled for o in orders if o.filled > 0}
    events = await fresh_redis.xrange(bus.key(STREAM_POLY_POSITIONS))
    assert len(events) == len([o for o in orders if o.filled > 0])


async def _all_decided(pool: AsyncConnectionPool, n: int) -> dict[str, dict[str, Any]] | None:
    got = await decisions(pool)
    done = [d for d in got.values() if d["decision"] != "traded" or d["status"] is not None]
    return got if len(got) == n and len(done) == n else None


async def test_restart_reconciles_an_order_the_venue_took(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    """A crash after the venue accepted the order, before its answer was recorded: the restarted
    trader finds it at the venue — one order, one fill set, the decision settled."""
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    sig = signal(cond, token, ask)
    first = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    placed = first.venue.place_order

    async def crash_after_accept(req: Any) -> Any:
        await placed(req)
        raise asyncio.CancelledError  # the process dies before recording the answer

    first.venue.place_order = crash_after_accept  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await first.decide(sig)
    key = signal_key(sig)
    assert (await decisions(fresh_pool))[key]["status"] is None

    again = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-2")
    await again.reconcile(0)
    await again.decide(sig)  # the redelivered signal too
    d = (await decisions(fresh_pool))[key]
    assert d["status"] in ("filled", "partially_filled") and d["filled"] > 0
    orders = await again.venue.orders()
    assert [o.order_id for o in orders] == [order_id_of(key)]
    assert await again.venue.fill_count(order_id_of(key)) == 1


async def test_exits_step_out_and_resolution_redeems(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    picks = await open_tokens(fresh_pool, poly_client, 2)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1", poly_exit_resolution_h=0.0,
               poly_exit_min_edge=-1.0)  # fmt: skip
    for c, tok, a in picks:
        await t.decide(signal(c, tok, a))
    held = {h.token_id: h for h in await t.venue.holdings()}
    assert set(held) == {tok for _, tok, _ in picks}
    (c_exit, tok_exit, _), (c_res, tok_res, _) = picks
    # the followed wallets left (none of the signal's wallets hold: the signal names none)
    # → make the first position's market end soon; resolve the second one
    async with fresh_pool.connection() as conn:
        await conn.execute("UPDATE poly_markets SET end_date = now() + interval '1 minute' "
                           "WHERE condition_id = %s", (c_exit,))  # fmt: skip
        await conn.execute(
            "UPDATE poly_markets SET closed = true, resolved_outcome = outcomes[1] "
            "WHERE condition_id = %s", (c_res,),
        )  # fmt: skip
    t.exit_policy = t.exit_policy.__class__(step_pct=D("0.25"), resolution_hours=D(1))
    t.lease.valid_until = float("inf")  # this replica leads
    await t.manage()
    await t.manage()
    after = {h.token_id: h for h in await t.venue.holdings()}
    assert tok_res not in after  # redeemed
    assert after[tok_exit].shares < held[tok_exit].shares  # stepped out, not all at once
    sold = held[tok_exit].shares - after[tok_exit].shares
    assert sold <= held[tok_exit].entry_shares * D("0.5") + D("0.01")  # two 25 % steps at most
    async with fresh_pool.connection() as conn:
        steps = await (await conn.execute(
            "SELECT kind, reason, pnl_pct FROM poly_copy_steps ORDER BY time")).fetchall()  # fmt: skip
    kinds = [s[0] for s in steps]
    assert kinds.count("resolution") == 1 and kinds.count("exit") == 2
    assert all(s[2] is not None for s in steps)
    assert {s[1] for s in steps if s[0] == "exit"} == {"resolution_near"}
    events = await fresh_redis.xrange(t.ctx.bus.key(STREAM_POLY_POSITIONS))
    kinds_ev = [Envelope.model_validate_json(f[b"e"]).payload["kind"] for _, f in events]
    assert kinds_ev.count("entry") == 2 and kinds_ev.count("exit") == 2
    assert kinds_ev.count("resolution") == 1


async def test_concurrent_replicas_never_spend_the_same_room(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    """Orders decided but not yet answered by a slow venue count against the cap: three
    signals decided at once on two replicas take at most the 100 USD the cap allows."""
    picks = await open_tokens(fresh_pool, poly_client, 3)
    a, b = (trader(fresh, fresh_pool, fresh_redis, poly_sim, f"pt-{i}") for i in (1, 2))
    for t in (a, b):
        placed = t.venue.place_order

        async def slow(req: Any, placed: Any = placed) -> Any:
            await asyncio.sleep(0.3)  # the venue is slow to answer: the room is still taken
            return await placed(req)

        t.venue.place_order = slow  # type: ignore[method-assign]
    sigs = [signal(c, tok, ask, usd=60.0) for c, tok, ask in picks]
    await asyncio.gather(a.decide(sigs[0]), b.decide(sigs[1]), a.decide(sigs[2]))
    eq = await a.venue.equity()
    assert eq.exposure <= D("0.10") * eq.equity, (eq.exposure, eq.equity)
    got = await decisions(fresh_pool)
    assert sorted(d["decision"] for d in got.values()) == ["refused", "traded", "traded"]


async def test_kill_switch_stops_new_entries(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    await t.killswitch.engage("paused by the owner", "test")
    sig = signal(cond, token, ask)
    await t.decide(sig)
    d = (await decisions(fresh_pool))[signal_key(sig)]
    assert d["decision"] == "skipped" and d["reason"].startswith("kill_switch")
    assert not await t.venue.orders()


async def test_book_without_asks_or_changed_tick_is_refused_and_nothing_placed(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    """The CLOB answers a book with no asks, or its tick changes between our pricing and the
    venue's check: the decision is refused with the reason and no fill exists."""
    picks = await open_tokens(fresh_pool, poly_client, 2)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    real_book = t.client.book
    reads = {"n": 0}

    async def no_asks(token_id: str) -> Any:
        return (await real_book(token_id)).model_copy(update={"asks": ()})

    async def tick_changes(token_id: str) -> Any:
        reads["n"] += 1  # the trader prices on the first read, the venue checks on the second
        book = await real_book(token_id)
        return book if reads["n"] == 1 else book.model_copy(update={"tick_size": 0.001})

    cases = []
    for (cond, token, ask), patch in zip(picks, (no_asks, tick_changes), strict=True):
        t.client.book = patch  # type: ignore[method-assign]
        sig = signal(cond, token, ask)
        await t.decide(sig)
        cases.append(signal_key(sig))
    got = await decisions(fresh_pool)
    assert [got[k]["decision"] for k in cases] == ["refused", "refused"]
    assert got[cases[0]]["reason"].startswith("no_liquidity")
    assert got[cases[1]]["reason"].startswith("tick_size_changed")
    assert not await t.venue.holdings()
    assert all(o.filled == 0 and o.status == "rejected" for o in await t.venue.orders())


async def test_exit_when_the_followed_wallets_leave(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1", poly_exit_min_edge=-1.0)
    sig = signal(cond, token, ask)
    wallets = ["0x" + "1" * 40, "0x" + "2" * 40]
    async with fresh_pool.connection() as conn:
        await conn.execute(
            """INSERT INTO poly_signals (time, condition_id, token_id, outcome, question,
               market_price, implied_prob, edge, criteria_met, criteria_total, checklist,
               smart_wallets, suggested_size_usd, scanner, scanner_version, source)
               VALUES (%s, %s, %s, 'Yes', 'Will it?', %s, %s, 0.08, 6, 7, '{}', %s, 40, 'poly_scanner',
               'test', 'sim')""",
            (sig.time, cond, token, ask, sig.implied_prob, wallets),
        )
        await conn.execute("UPDATE poly_markets SET end_date = now() + interval '10 days' "
                           "WHERE condition_id = %s", (cond,))  # fmt: skip
        for w in wallets:
            await conn.execute(
                """INSERT INTO poly_positions (wallet, token_id, condition_id, status, size, avg_price,
                   cost_usd, realized_pnl_usd, source) VALUES (%s, %s, %s, 'OPEN', 100, %s, 50, 0, 'sim')""",
                (w, token, cond, ask),
            )
    await t.decide(sig)
    [entry] = await t.venue.holdings()
    t.lease.valid_until = float("inf")  # this replica leads
    await t.manage()
    [same] = await t.venue.holdings()
    assert same.shares == entry.shares  # both wallets still hold, edge fine, far from the end
    async with fresh_pool.connection() as conn:
        await conn.execute("UPDATE poly_positions SET status = 'CLOSED', size = 0 WHERE wallet = %s",
                           (wallets[1],))  # fmt: skip
    await t.manage()
    [after] = await t.venue.holdings()
    assert 0 < after.shares < entry.shares  # one step, not all at once
    async with fresh_pool.connection() as conn:
        reasons = await (await conn.execute("SELECT reason FROM poly_copy_steps")).fetchall()
    assert reasons == [("wallets_exited",)]


async def test_above_the_cap_after_fills_the_largest_position_is_trimmed(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,
) -> None:  # fmt: skip
    picks = await open_tokens(fresh_pool, poly_client, 2)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    for c, tok, a in picks:
        await t.decide(signal(c, tok, a, usd=30.0))
    eq = await t.venue.equity()
    assert 0 < eq.exposure <= D("0.10") * eq.equity
    # the cap tightens under the positions (as when equity falls): the re-check trims them back
    t.ctx.settings = t.ctx.settings.model_copy(update={"poly_risk_cap": 0.04})
    await t.check_cap()
    after = await t.venue.equity()
    assert after.exposure <= D("0.04") * after.equity, (after.exposure, after.equity)
    assert after.exposure > 0  # trimmed, not closed out
    async with fresh_pool.connection() as conn:
        reasons = await (await conn.execute("SELECT reason FROM poly_copy_steps")).fetchall()
    assert {r[0] for r in reasons} == {"over_cap"} and len(reasons) <= 5  # selling costs the
    # spread and the fee, which lowers equity and so the cap: a second, small round may follow
