"""The copy trader's records in the shared trade log and what its outcomes teach: orders and
trades with vertical 'poly' (the signal, the wallets followed, PnL % through the one formula),
perps readers blind to them, and closed copy trades updating the poly scanner's leaderboard
row and the followed wallets' copy records (simulator CLOB, real PostgreSQL and Redis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.adapters.polymarket.rest import PolymarketClient
from quantcore.model.events import STREAM_POLY_POSITIONS, Envelope
from quantcore.store import control
from quantcore.store import poly as poly_store
from quantcore.store import poly_trader as pstore
from quantcore.store import trades as tstore
from quantcore.testing import Sandbox
from quantcore.trading import monitor
from svc_poly_trader.service import order_id_of, signal_key
from tests.poly.conftest import PolySim
from tests.poly_trader.test_service import collected, open_tokens, signal, trader  # noqa: F401

D = Decimal
A, B, C = ("0x" + c * 40 for c in "abc")


async def rows(pool: AsyncConnectionPool, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, args or None)
        assert cur.description is not None
        names = [c.name for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def store_signal(pool: AsyncConnectionPool, sig: Any, wallets: list[str]) -> None:
    """The poly_signals row the scanner wrote with the event (the wallets it followed)."""
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO poly_signals (time, condition_id, token_id, outcome, question,
               market_price, implied_prob, edge, criteria_met, criteria_total, checklist,
               smart_wallets, suggested_size_usd, scanner, scanner_version, source)
               VALUES (%s, %s, %s, 'Yes', 'Will it?', %s, %s, 0.08, 6, 7, '{}', %s, 40,
               'poly_scanner', 'test', 'sim')""",
            (sig.time, sig.condition_id, sig.token_id, sig.market_price, sig.implied_prob, wallets),
        )


async def test_entries_and_steps_are_orders_and_trades_with_vertical_poly(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,  # noqa: F811
) -> None:  # fmt: skip
    [(cond, token, ask)] = await open_tokens(fresh_pool, poly_client, 1)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1", poly_exit_min_edge=-1.0)
    sig = signal(cond, token, ask)
    await store_signal(fresh_pool, sig, [B, A])
    await t.decide(sig)
    await t.decide(sig)  # redelivered: nothing new anywhere
    key = signal_key(sig)
    [venue_order] = await t.venue.orders()
    [trade] = await rows(fresh_pool, "SELECT * FROM trades")
    assert trade["vertical"] == "poly" and trade["status"] == "open"
    assert trade["signal_id"] == pstore.signal_id_of(key) and trade["signal_key"] == key
    assert trade["followed_wallets"] == [A, B] and trade["symbol"] == token
    assert (trade["scanner"], trade["scanner_version"], trade["agent"]) == (
        "poly_scanner", "test", "poly_copy",
    )  # fmt: skip
    # the entry is what the venue filled, at the venue's average, cost with its fee
    assert trade["qty"] == venue_order.filled > 0
    assert trade["entry_price"] == venue_order.avg_price
    assert trade["margin"] == venue_order.avg_price * venue_order.filled + venue_order.fee
    [order] = await rows(fresh_pool, "SELECT * FROM orders")
    assert order["order_link_id"] == order_id_of(key) == venue_order.order_id
    assert (order["vertical"], order["side"], order["status"], order["reduce_only"]) == (
        "poly", "buy", venue_order.status.value, False,
    )  # fmt: skip
    assert order["filled_qty"] == venue_order.filled and order["trade_id"] == trade["trade_id"]
    events = await rows(fresh_pool, "SELECT status FROM order_events")
    assert [e["status"] for e in events] == [venue_order.status.value]

    # perps readers never see a poly position
    async with fresh_pool.connection() as conn:
        assert await tstore.open_trades(conn, "paper") == []
        assert await control.open_positions(conn) == []
        assert (await tstore.exposure(conn, "paper", trade["created_at"])).open_symbols == set()

    # the market ends soon: one gradual step out, an exit order on the same trade
    async with fresh_pool.connection() as conn:
        await conn.execute("UPDATE poly_markets SET end_date = now() + interval '1 minute' "
                           "WHERE condition_id = %s", (cond,))  # fmt: skip
    t.lease.valid_until = float("inf")
    await t.manage()
    [held] = await t.venue.holdings()
    sells = await rows(fresh_pool, "SELECT * FROM orders WHERE side = 'sell'")
    assert len(sells) == 1 and sells[0]["trade_id"] == trade["trade_id"]
    assert sells[0]["reduce_only"] and sells[0]["filled_qty"] == trade["qty"] - held.shares
    [step] = await rows(fresh_pool, "SELECT * FROM poly_copy_steps")
    assert step["trade_id"] == trade["trade_id"]
    # the step's PnL % is the one formula: net PnL over the cost taken out
    assert step["pnl_pct"] == pytest.approx(
        monitor.pnl_pct_margin(
            step["pnl_usd"], step["cost_usd"] / step["shares"], step["shares"], D(1)
        )
    )
    [still] = await rows(fresh_pool, "SELECT status FROM trades")
    assert still["status"] == "open"
    # equity snapshot of the poly book next to the perps ones
    [snap] = await rows(fresh_pool, "SELECT * FROM equity_snapshots")
    assert (snap["vertical"], snap["agent"], snap["open_positions"]) == ("poly", "poly_copy", 1)


async def test_resolved_copy_trades_teach_the_leaderboard_and_the_wallet_records(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, poly_sim: PolySim,
    poly_client: PolymarketClient, collected: None,  # noqa: F811
) -> None:  # fmt: skip
    picks = await open_tokens(fresh_pool, poly_client, 2)
    t = trader(fresh, fresh_pool, fresh_redis, poly_sim, "pt-1")
    sigs = [signal(c, tok, a) for c, tok, a in picks]
    await store_signal(fresh_pool, sigs[0], [A, B])  # the winner follows A and B
    await store_signal(fresh_pool, sigs[1], [A, C])  # the loser follows A and C
    for s in sigs:
        await t.decide(s)
    held = {h.token_id: h for h in await t.venue.holdings()}
    (c_win, tok_win, _), (c_lose, tok_lose, _) = picks
    async with fresh_pool.connection() as conn:
        await conn.execute(  # ours wins: the market resolves to our token's outcome
            "UPDATE poly_markets SET closed = true, "
            "resolved_outcome = outcomes[array_position(token_ids, %s)] WHERE condition_id = %s",
            (tok_win, c_win),
        )
        await conn.execute(  # ours loses: another outcome wins
            "UPDATE poly_markets SET closed = true, resolved_outcome = (SELECT o FROM "
            "unnest(outcomes, token_ids) AS u(o, tk) WHERE tk <> %s LIMIT 1) WHERE condition_id = %s",
            (tok_lose, c_lose),
        )
    t.lease.valid_until = float("inf")
    await t.manage()
    await t.manage()  # a second pass changes nothing (each trade closes once)
    # the resolutions are announced with the signal they copied, won and lost
    events = [
        Envelope.model_validate_json(f[b"e"]).payload
        for _, f in await fresh_redis.xrange(t.ctx.bus.key(STREAM_POLY_POSITIONS))
    ]
    resolved = {e["token_id"]: e for e in events if e["kind"] == "resolution"}
    assert resolved[tok_win]["price"] == 1.0 and resolved[tok_lose]["price"] == 0.0
    assert {resolved[tok_win]["signal_key"], resolved[tok_lose]["signal_key"]} == {
        signal_key(s) for s in sigs
    }
    assert await t.venue.holdings() == []
    trades = {r["symbol"]: r for r in await rows(fresh_pool, "SELECT * FROM trades")}
    win, lose = trades[tok_win], trades[tok_lose]
    assert win["status"] == lose["status"] == "closed"
    assert win["close_reason"] == lose["close_reason"] == "resolved"
    # PnL: redemption pays 1 a share for the winner, 0 for the loser, minus what they cost
    assert win["pnl_quote"] == held[tok_win].shares - held[tok_win].cost > 0
    assert lose["pnl_quote"] == -held[tok_lose].cost
    assert (win["exit_price"], lose["exit_price"]) == (1, 0)
    for tr, h in ((win, held[tok_win]), (lose, held[tok_lose])):
        assert tr["margin"] == h.cost
        assert float(tr["pnl_pct_margin"]) == pytest.approx(float(tr["pnl_quote"] / h.cost * 100))
        assert float(tr["pnl_pct_price"]) == pytest.approx(
            monitor.pnl_pct_price("long", tr["entry_price"], tr["exit_price"])
        )
    assert float(lose["pnl_pct_margin"]) == pytest.approx(-100.0)

    # the poly scanner's leaderboard row: two copy trades, one win
    [stats] = await rows(fresh_pool, "SELECT * FROM scanner_stats")
    assert (stats["scanner"], stats["scanner_version"], stats["venue"]) == (
        "poly_scanner",
        "test",
        "paper",
    )
    assert (stats["trades"], stats["wins"], stats["losses"]) == (2, 1, 1)
    assert stats["pnl_quote"] == win["pnl_quote"] + lose["pnl_quote"]
    async with fresh_pool.connection() as conn:
        board = {s.scanner: s for s in await control.scanner_leaderboard(conn)}
    assert board["poly_scanner"].trades == 2 and board["poly_scanner"].signals == 2
    assert board["poly_scanner"].pnl_quote == pytest.approx(float(stats["pnl_quote"]))

    # each followed wallet's copy record
    wallets = {
        r["wallet"]: r for r in await rows(fresh_pool, "SELECT * FROM poly_wallet_copy_stats")
    }
    assert set(wallets) == {A, B, C}
    assert (wallets[A]["trades"], wallets[A]["wins"], wallets[A]["losses"]) == (2, 1, 1)
    assert (wallets[B]["trades"], wallets[B]["wins"]) == (1, 1)
    assert (wallets[C]["trades"], wallets[C]["wins"], wallets[C]["losses"]) == (1, 0, 1)
    assert wallets[B]["pnl_usd"] == win["pnl_quote"] and wallets[C]["pnl_usd"] == lose["pnl_quote"]
    assert float(wallets[C]["total_pnl_pct"]) == pytest.approx(-100.0)

    # the hunter's outcome input: one return per (copy trade, wallet it followed)
    async with fresh_pool.connection() as conn:
        copied = await poly_store.copy_returns(conn, win["opened_at"], {A: 0, C: 1})
    got = sorted(zip(copied.wallet.tolist(), copied.ret.tolist(), strict=True))
    expected = sorted([(0, float(win["pnl_pct_margin"]) / 100), (0, -1.0), (1, -1.0)])
    assert [w for w, _ in got] == [w for w, _ in expected]  # B is not scored: left out
    assert [r for _, r in got] == pytest.approx([r for _, r in expected])
