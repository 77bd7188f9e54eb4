"""poly_trader with POLY_TRADING_MODE=live pointed at the simulator's CLOB: Polymarket's own
client (py-clob-client-v2) derives the API key (L1), signs V2 orders (EIP-712) and posts them
(L2) to a server that checks those signatures; fills are confirmed from the Data API feeds, not
from "matched"; real PostgreSQL and Redis. Also: live refuses to start without confirmation,
keys, a funder for smart wallets, or a passing geoblock check; a crash between signing and
recording is healed by the order's hash."""

from __future__ import annotations

import asyncio
import signal as sigs
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr
from redis.asyncio import Redis

from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.bus import Bus
from quantcore.collect import poly as collect
from quantcore.config import LIVE_CONFIRMATION_PHRASE, ConfigError, Settings
from quantcore.model.events import STREAM_POLY_POSITIONS, STREAM_POLY_SIGNALS
from quantcore.model.trading import Side
from quantcore.store.poly_live_venue import AwaitingRedeem, LivePolyVenue, start_live
from quantcore.testing import Sandbox
from quantcore.venues.poly import PolyOrderRequest
from svc_poly_trader.service import PolyTrader, order_id_of, signal_key
from svc_simulator.polymarket_clob import ERR_MAKER
from tests.conftest import aeventually
from tests.poly.conftest import NOW, PolySim
from tests.poly_trader.test_crash import scalar, start
from tests.poly_trader.test_service import decisions, open_tokens, running, signal, trader

D = Decimal
KEY = "0x" + "4c" * 32


def live_trader(sb: Sandbox, pool: AsyncConnectionPool, redis: Redis, sim: PolySim, name: str,
                key: str = KEY, **overrides: Any) -> PolyTrader:  # fmt: skip
    live: dict[str, Any] = dict(
        poly_trading_mode="live", polymarket_private_key=SecretStr(key),
        poly_live_confirm=LIVE_CONFIRMATION_PHRASE, poly_signature_type=0,
        poly_confirm_timeout_s=5.0, poly_heartbeat_s=0.2,
    )  # fmt: skip
    return trader(sb, pool, redis, sim, name, **{**live, **overrides})


async def sim_post(sim: PolySim, path: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as c:
        (await c.post(sim.url + path, json=body)).raise_for_status()


async def clob_view(sim: PolySim) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return dict((await c.get(sim.url + "/sim/poly/clob")).json())


@pytest.fixture
async def live_world(
    fresh_pool: AsyncConnectionPool, poly_sim: PolySim, poly_client: PolymarketClient
) -> None:
    """Markets collected, the CLOB charging the trader's fee rate, our EOA funded with $1000."""
    await collect.collect_markets(fresh_pool, poly_client, NOW)
    poly_sim.world.fee_rate_bps = 300.0
    await sim_post(
        poly_sim, "/sim/poly/account", {"owner": Account.from_key(KEY).address, "usd": 1000}
    )


def test_live_refuses_to_start_without_confirmation_keys_or_funder() -> None:
    key = "0x" + "1" * 64
    with pytest.raises(ValueError, match="POLYMARKET_PRIVATE_KEY"):
        Settings(poly_trading_mode="live")
    with pytest.raises(ValueError, match="POLY_LIVE_CONFIRM"):
        Settings(poly_trading_mode="live", polymarket_private_key=key)
    with pytest.raises(ValueError, match="POLY_FUNDER_ADDRESS"):  # deposit wallet is the default
        Settings(poly_trading_mode="live", polymarket_private_key=key,
                 poly_live_confirm=LIVE_CONFIRMATION_PHRASE)  # fmt: skip
    ok = Settings(poly_trading_mode="live", polymarket_private_key=key,
                  poly_live_confirm=LIVE_CONFIRMATION_PHRASE, poly_funder_address="0x" + "ab" * 20)  # fmt: skip
    assert ok.poly_signature_type == 3
    assert Settings().poly_trading_mode == "paper"  # paper is the default


async def test_live_refuses_to_start_when_geoblocked_or_unchecked(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    live_world: None, tmp_path: Path,
) -> None:  # fmt: skip
    await sim_post(  # an OFAC jurisdiction: no orders at all (a close-only one: exits only)
        poly_sim, "/sim/poly/geoblock", {"blocked": True, "country": "IR", "region": "23"}
    )
    blocked = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-geo")
    with pytest.raises(ConfigError, match="geoblocks this machine"):
        await blocked.run(asyncio.Event())
    # a real process: exit code 2 with the reason, no traceback, nothing placed
    live = {"POLY_TRADING_MODE": "live", "POLYMARKET_PRIVATE_KEY": KEY,
            "POLY_LIVE_CONFIRM": LIVE_CONFIRMATION_PHRASE, "POLY_SIGNATURE_TYPE": "0"}  # fmt: skip
    proc = start(fresh, poly_sim, tmp_path / "geo.log", **live)
    assert await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=60) == 2
    text = (tmp_path / "geo.log").read_text()
    assert "geoblocks this machine (country IR, region 23)" in text and "Traceback" not in text
    unchecked = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-geo2",
                            poly_endpoint_geoblock=poly_sim.url + "/no/such/page")  # fmt: skip
    with pytest.raises(ConfigError, match="geoblock check failed"):
        await unchecked.run(asyncio.Event())
    assert (await clob_view(poly_sim))["orders"] == []


async def test_close_only_region_exits_only(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None,
) -> None:  # fmt: skip
    """Started where Polymarket's geoblock answers blocked from a close-only jurisdiction (the
    UK): the venue starts for exits only. A new signal is refused with the reason before
    anything is signed; a sell of a held position goes through and is confirmed."""
    (c1, t1, a1), (c2, t2, a2) = await open_tokens(fresh_pool, poly_client, 2)
    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-co")
    venue = t.venue
    assert isinstance(venue, LivePolyVenue)
    await start_live(venue, t.ctx.settings.poly_geoblock_url, t.log)
    assert venue.close_only is None
    held = await venue.place_order(
        PolyOrderRequest("pc-held", c1, t1, Side.BUY, D(str(a1)), D(15), D("0.01"))
    )
    assert held.filled == D(15)
    await sim_post(
        poly_sim, "/sim/poly/geoblock", {"blocked": True, "country": "GB", "region": "ENG"}
    )
    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-co2")
    venue = t.venue
    assert isinstance(venue, LivePolyVenue)
    await start_live(venue, t.ctx.settings.poly_geoblock_url, t.log)  # starts: exits allowed
    assert venue.close_only is not None and "country GB" in venue.close_only
    sig = signal(c2, t2, a2)
    await t.decide(sig)
    d = (await decisions(fresh_pool))[signal_key(sig)]
    assert d["status"] == "rejected" and d["reason"].startswith("close_only: "), d
    exit_ = await venue.place_order(
        PolyOrderRequest("pc-exit", c1, t1, Side.SELL, D("0.01"), D(5), D("0.01"))
    )
    assert exit_.status.value == "filled" and exit_.filled == D(5), exit_
    assert [h.shares for h in await venue.holdings()] == [D(10)]
    assert [o["side"] for o in (await clob_view(poly_sim))["orders"]] == ["BUY", "SELL"]


async def test_live_signals_become_clob_orders_confirmed_from_the_feeds(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None,
) -> None:  # fmt: skip
    bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="poly_scanner@test")
    picks = await open_tokens(fresh_pool, poly_client, 3)
    sigs = [signal(c, t, a, usd=60.0) for c, t, a in picks]
    for s in [*sigs, sigs[0]]:  # and a replayed signal
        await bus.publish(STREAM_POLY_SIGNALS, s)
    replicas = [live_trader(fresh, fresh_pool, fresh_redis, poly_sim, f"pt-{i}") for i in (1, 2)]
    venue = replicas[0].venue
    assert isinstance(venue, LivePolyVenue)
    async with running(*replicas):
        got = await aeventually(lambda: _settled(fresh_pool, len(sigs)), timeout=60)
        await aeventually(lambda: _heartbeats(poly_sim), timeout=20)
        eq = await venue.equity()  # cash from the CLOB, positions from the Data API
        held = {h.token_id for h in await venue.holdings()}
    traded = [got[signal_key(s)] for s in sigs if got[signal_key(s)]["decision"] == "traded"]
    assert traded and any(d["decision"] == "refused" for d in got.values())  # the caps held
    assert all(d["status"] in ("filled", "partially_filled") for d in traded)

    view = await clob_view(poly_sim)
    # exactly once at the CLOB across two replicas and a replayed signal
    assert len(view["orders"]) == len(traded)
    async with fresh_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT order_id, order_hash, filled, tx_hashes FROM poly_live_orders"
        )
        rows = {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}
    assert {h for h, _, _ in rows.values()} == {o["id"] for o in view["orders"]}
    for d in traded:
        order_hash, filled, txs = rows[d["order_id"]]
        assert filled == d["filled"] > 0
        # the fill is what the Data API feed shows for the order's settlements
        cond = next(s.condition_id for s in sigs if order_id_of(signal_key(s)) == d["order_id"])
        feed = (await poly_client.trades_page(user=Account.from_key(KEY).address.lower(),
                                              conditions=[cond])).items  # fmt: skip
        assert sum(D(str(t.size)) for t in feed if t.tx_hash in txs) == filled
        at_clob = [t for t in view["trades"] if t["taker_order_id"] == order_hash]
        assert sum(D(t["size"]) for t in at_clob) == filled

    assert eq.exposure <= D("0.10") * eq.equity, (eq.exposure, eq.equity)
    assert held == {
        next(s.token_id for s in sigs if order_id_of(signal_key(s)) == d["order_id"])
        for d in traded
    }
    events = await fresh_redis.xrange(bus.key(STREAM_POLY_POSITIONS))
    assert len(events) == len(traded)


async def test_live_exits_step_out_and_resolution_is_booked(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The paper run's exits and resolution on the live venue: exit steps are SELL orders signed
    and matched at the CLOB (holdings from the Data API shrink), a resolved market is booked
    once and then no longer held; its shares, still in the wallet at Polymarket, are logged and
    listed as awaiting redeem until Polymarket pays them out (its feed shows them redeemed)."""
    picks = await open_tokens(fresh_pool, poly_client, 2)
    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1", poly_exit_resolution_h=0.0,
                    poly_exit_min_edge=-1.0)  # fmt: skip
    assert isinstance(t.venue, LivePolyVenue)
    await t.venue.clob.connect()
    for c, tok, a in picks:
        await t.decide(signal(c, tok, a))
    held = {h.token_id: h for h in await t.venue.holdings()}
    assert set(held) == {tok for _, tok, _ in picks}
    (c_exit, tok_exit, _), (c_res, tok_res, _) = picks
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
    assert tok_res not in after  # booked as resolved
    assert after[tok_exit].shares < held[tok_exit].shares  # stepped out, not all at once
    view = await clob_view(poly_sim)
    sells = [o for o in view["orders"] if o["side"] == "SELL"]
    assert len(sells) == 2 and all(o["status"] == "MATCHED" for o in sells)
    sold = sum(D(o["size_matched"]) for o in sells)
    assert held[tok_exit].shares - after[tok_exit].shares == sold  # the feed's view = the CLOB's
    async with fresh_pool.connection() as conn:
        steps = await (await conn.execute(
            "SELECT kind, reason, pnl_pct FROM poly_copy_steps ORDER BY time")).fetchall()  # fmt: skip
    kinds = [s[0] for s in steps]
    assert kinds.count("resolution") == 1 and kinds.count("exit") == 2
    assert all(s[2] is not None for s in steps)
    m = poly_sim.world.market(c_res)
    won = tok_res == m.token_ids[0]  # resolved to outcomes[1], the first outcome
    shares = held[tok_res].shares
    assert await t.venue.awaiting_redeem() == [
        AwaitingRedeem(c_res, tok_res, shares, won, shares if won else D(0))
    ]
    out = capsys.readouterr().out
    assert "position awaiting redeem" in out and f"token_id={tok_res}" in out
    m.winner, m.end = 0, poly_sim.world.now  # Polymarket resolves and redeems (its auto-redeem)
    assert await t.venue.awaiting_redeem() == []


async def test_matched_but_never_settled_is_not_a_fill(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None,
) -> None:  # fmt: skip
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    await sim_post(poly_sim, "/sim/poly/clob-faults", {"settle_fail": 10})
    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    await t.venue.clob.connect()  # type: ignore[union-attr]
    sig = signal(cond, token, ask)
    await t.decide(sig)
    d = (await decisions(fresh_pool))[signal_key(sig)]
    assert d["decision"] == "traded" and d["status"] == "cancelled" and d["filled"] == 0
    view = await clob_view(poly_sim)
    assert [o["status"] for o in view["orders"]] == ["MATCHED"]  # the CLOB said matched ...
    assert view["trades"] and all(
        tr["status"] == "FAILED" for tr in view["trades"]
    )  # ... it failed
    order = await t.venue.get_order(order_id_of(signal_key(sig)))
    assert order is not None and order.filled == 0 and "not settled" in (order.reason or "")
    assert await t.venue.holdings() == []
    bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="test")
    assert await fresh_redis.xrange(bus.key(STREAM_POLY_POSITIONS)) == []


async def test_deposit_wallet_account_trades_live(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None,
) -> None:  # fmt: skip
    """Signature type 3 (the default for accounts created after 2026-05-04) through
    py-clob-client-v2: the key derived by the owner EOA, orders made and signed for the deposit
    wallet (ERC-7739). The CLOB accepts the order, the fill is confirmed from the Data API feed
    of the wallet, the decision is settled with it. The same account's plain EOA order is still
    refused with Polymarket's text, recorded as the decision's reason, nothing placed."""
    wallet = Account.create().address
    owner = Account.from_key(KEY).address
    await sim_post(poly_sim, "/sim/poly/account", {"owner": owner, "usd": 1000, "wallet": wallet,
                                                   "kind": "deposit"})  # fmt: skip
    [(cond, token, ask), (cond2, token2, ask2)] = await open_tokens(fresh_pool, poly_client, 2)
    eoa = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-eoa")  # signature type 0
    await eoa.venue.clob.connect()  # type: ignore[union-attr]
    refused = signal(cond2, token2, ask2)
    await eoa.decide(refused)
    d = (await decisions(fresh_pool))[signal_key(refused)]
    assert d["status"] == "rejected" and d["reason"] == f"venue: {ERR_MAKER}"
    assert (await clob_view(poly_sim))["orders"] == []

    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-dw", poly_signature_type=3,
                    poly_funder_address=wallet)  # fmt: skip
    venue = t.venue
    assert isinstance(venue, LivePolyVenue) and venue.user == wallet.lower()
    await venue.clob.connect()
    sig = signal(cond, token, ask)
    await t.decide(sig)
    d = (await decisions(fresh_pool))[signal_key(sig)]
    assert d["decision"] == "traded" and d["status"] == "filled" and d["filled"] > 0, d
    [order] = (await clob_view(poly_sim))["orders"]
    assert order["maker_address"] == wallet.lower() and D(order["size_matched"]) == d["filled"]
    feed = await poly_client.trades_page(user=wallet.lower(), conditions=[cond])
    assert D(str(sum(tr.size for tr in feed.items))) == d["filled"]  # confirmed from the feed
    assert [h.token_id for h in await venue.holdings()] == [token]
    assert (await poly_client.trades_page(user=owner.lower(), conditions=[cond])).items == []


async def test_crash_between_signing_and_recording_is_healed_by_the_hash(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None,
) -> None:  # fmt: skip
    (c1, t1, a1), (c2, t2, a2) = await open_tokens(fresh_pool, poly_client, 2)
    t = live_trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    venue = t.venue
    assert isinstance(venue, LivePolyVenue)
    await venue.clob.connect()
    tick = D("0.01")
    never = PolyOrderRequest("pc-never-e", c1, t1, Side.BUY, D(str(a1)), D(5), tick)
    lost = PolyOrderRequest("pc-lost-e", c2, t2, Side.BUY, D(str(a2)), D(5), tick)
    # (a) signed and stored, the process died before posting it
    s1 = await venue.clob.sign(t1, "buy", never.limit, never.shares, tick)
    async with fresh_pool.connection() as conn:
        await venue._insert(conn, never, s1)
    assert await venue.get_order(never.order_id) is None  # the CLOB never got it
    placed = await venue.place_order(never)  # the reconcile path: same id again
    assert placed.duplicate and placed.filled == D(5)
    # (b) posted, the process died before recording the answer
    s2 = await venue.clob.sign(t2, "buy", lost.limit, lost.shares, tick)
    async with fresh_pool.connection() as conn:
        await venue._insert(conn, lost, s2)
    await venue.clob.post(s2)
    found = await venue.get_order(lost.order_id)
    assert found is not None and found.filled == D(5) and found.avg_price == D(str(a2))
    again = await venue.place_order(lost)
    assert again.duplicate and again.filled == D(5)
    view = await clob_view(poly_sim)
    assert sorted(o["id"] for o in view["orders"]) == sorted([s1.order_hash, s2.order_hash])
    assert len(view["trades"]) == 2  # one fill each, nothing placed twice


async def _settled(pool: AsyncConnectionPool, n: int) -> dict[str, dict[str, Any]] | None:
    got = await decisions(pool)
    done = [d for d in got.values() if d["decision"] != "traded" or d["status"] is not None]
    return got if len(got) == n and len(done) == n else None


async def _heartbeats(sim: PolySim) -> bool:
    return int((await clob_view(sim))["heartbeats"]) > 0


async def test_sigkill_after_the_clob_accepted_a_live_order(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, live_world: None, tmp_path: Path,
) -> None:  # fmt: skip
    """A real live poly_trader process (settings from the environment, geoblock check, L1 key
    derivation) killed right after the CLOB accepted its order: after a restart, one BUY order
    at the CLOB, its fill recorded once, the decision settled, the signal acked."""
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="poly_scanner@test")
    await bus.publish(STREAM_POLY_SIGNALS, signal(cond, token, ask))
    log = tmp_path / "poly_trader.log"
    live = {"POLY_TRADING_MODE": "live", "POLYMARKET_PRIVATE_KEY": KEY,
            "POLY_LIVE_CONFIRM": LIVE_CONFIRMATION_PHRASE, "POLY_SIGNATURE_TYPE": "0",
            "POLY_FEE_RATE_BPS": "300", "POLY_CONFIRM_TIMEOUT_S": "5"}  # fmt: skip
    proc = start(fresh, poly_sim, log, POLY_TRADER_FAULT="kill_after_place", **live)
    code = await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=90)
    assert code == -sigs.SIGKILL, log.read_text()[-2000:]
    assert len((await clob_view(poly_sim))["orders"]) == 1
    assert await scalar(fresh_pool, "SELECT order_status FROM poly_copy_decisions") is None
    key = bus.key(STREAM_POLY_SIGNALS)
    assert (await fresh_redis.xpending(key, "poly_trader"))["pending"] == 1  # never acked

    proc = start(fresh, poly_sim, log, **live)
    try:
        await aeventually(
            lambda: scalar(fresh_pool, "SELECT order_status FROM poly_copy_decisions"), timeout=60
        )
        await aeventually(lambda: _acked(fresh_redis, key), timeout=60)
    finally:
        proc.send_signal(sigs.SIGINT)
        await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=30)
    view = await clob_view(poly_sim)
    buys = [o for o in view["orders"] if o["side"] == "BUY"]
    assert len(buys) == 1, view["orders"]  # the restarted leader may step out: sells only
    filled = await scalar(fresh_pool, "SELECT filled FROM poly_live_orders WHERE side = 'buy'")
    assert filled == D(buys[0]["size_matched"]) > 0
    assert await scalar(fresh_pool, "SELECT filled FROM poly_copy_decisions") == filled
    assert await scalar(fresh_pool, "SELECT count(*) FROM poly_copy_decisions") == 1
    text = log.read_text()
    assert "live Polymarket venue ready" in text and KEY[2:] not in text  # the key never logged


async def _acked(redis: Redis, key: str) -> bool:
    return (await redis.xpending(key, "poly_trader"))["pending"] == 0
