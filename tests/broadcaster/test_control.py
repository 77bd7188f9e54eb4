"""Telegram control: every command answers the admin from a seeded database (through PTB's
long polling against the fake); anyone else gets nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from quantcore.bus import Bus
from quantcore.model.events import STREAM_TRADE_COMMANDS, Envelope
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import Sandbox
from quantcore.trading.killswitch import KillSwitch
from tests.broadcaster.conftest import ADMIN_ID, make_broadcaster, running, telegram_settings
from tests.conftest import aeventually
from tests.fakes.telegram import FakeTelegram

NOW = datetime.now(UTC).replace(microsecond=0)
# "today" for /pnl: 30 minutes ago, unless that was yesterday (a run just after midnight UTC)
EARLIER_TODAY = max(NOW - timedelta(minutes=30), NOW.replace(hour=0, minute=0, second=0))


async def seed(pool: AsyncConnectionPool) -> None:
    beat_now = datetime.now(UTC)  # not NOW: the module may be imported long before this runs
    async with pool.connection() as conn, conn.transaction():
        for svc, inst, status, age in [
            ("ranker", "r-1", "ok", 2),
            ("spike_scanner", "s-1", "ok", 600),
        ]:
            await conn.execute(
                "INSERT INTO service_heartbeats (service, instance, status, started_at, beat_at, version) "
                "VALUES (%s, %s, %s, %s, %s, '1.0.0')",
                (
                    svc,
                    inst,
                    status,
                    beat_now - timedelta(hours=1),
                    beat_now - timedelta(seconds=age),
                ),
            )
        for cycle, at in (("old", NOW - timedelta(minutes=5)), ("new", NOW - timedelta(minutes=1))):
            for rank in range(1, 11):
                await conn.execute(
                    "INSERT INTO coin_rankings (time, cycle_id, rank, symbol, score, direction, price, "
                    "target_price, scanner, scanner_version) VALUES (%s, %s, %s, %s, %s, %s, 100, 105, 'ranker', '1')",
                    (at, cycle, rank, f"{'OLD' if cycle == 'old' else 'TOP'}{rank}USDT", 100 - rank,
                     "long" if rank % 2 else "short"),
                )  # fmt: skip
        trades = [
            # symbol, direction, status, entry, exit, lev, pnl_quote, pnl_pct, margin_pct, closed, scanner
            ("BTCUSDT", "long", "open", 60000, None, 5, None, None, None, None, "ranker"),
            ("ETHUSDT", "short", "open", 3000, None, 2, None, None, None, None, "ranker"),
            ("SOLUSDT", "long", "closed", 100, 104, 5, 20.0, 4.0, 19.5, EARLIER_TODAY, "ranker"),
            ("XRPUSDT", "short", "closed", 1, 1.02, 5, -10.0, -2.0, -10.5, NOW - timedelta(days=5), "ranker"),
            ("DOGEUSDT", "long", "closed", 0.1, 0.11, 3, 30.0, 10.0, 29.0, NOW - timedelta(days=20), "cluster_scanner"),
        ]  # fmt: skip
        for sym, d, st, entry, exit_, lev, q, p, m, closed, scanner in trades:
            await conn.execute(
                "INSERT INTO trades (agent, scanner, scanner_version, venue, symbol, direction, status, "
                "entry_price, exit_price, leverage, pnl_quote, pnl_pct_price, pnl_pct_margin, opened_at, "
                "closed_at, stop_loss, take_profit) VALUES ('autotrader', %s, '1.0.0', 'paper', %s, %s, %s, "
                "%s, %s, %s, %s, %s, %s, %s, %s, 1, 2)",
                (scanner, sym, d, st, entry, exit_, lev, q, p, m, NOW - timedelta(days=30), closed),
            )  # fmt: skip
        for sym, price in (("BTCUSDT", 61200.0), ("ETHUSDT", 3060.0)):
            await conn.execute(
                "INSERT INTO market_snapshots (time, symbol, price, source) VALUES (%s, %s, %s, 'sim')",
                (NOW - timedelta(minutes=1), sym, price),
            )
        for scanner in ("ranker", "ranker", "cluster_scanner"):
            await conn.execute(
                "INSERT INTO signals (time, signal_id, symbol, direction, scanner, scanner_version, agent) "
                "VALUES (%s, %s, 'BTCUSDT', 'long', %s, '1.0.0', 'ranker')",
                (NOW, uuid.uuid4(), scanner),
            )  # fmt: skip


async def test_every_command_answers_the_admin_and_nobody_else(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    await seed(fresh_pool)
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    ks = KillSwitch(fresh_redis, fresh.settings.bus_namespace)

    async def ask(text: str, user: int = ADMIN_ID) -> str:
        before = len(telegram.sent(ADMIN_ID))
        telegram.push_message(user, text)
        await aeventually(lambda: len(telegram.sent(ADMIN_ID)) > before, timeout=20)
        reply = telegram.sent(ADMIN_ID)[-1]
        assert reply.params["parse_mode"] == "HTML"
        return str(reply.params["text"])

    async with running(svc):
        await aeventually(lambda: telegram.named("getUpdates"), timeout=20)  # polling

        status = await ask("/status")
        assert "PAPER · SIMULATED DATA" in status and "Kill switch: off" in status
        assert "✅ ranker <code>r-1</code> ok" in status
        assert "❌ spike_scanner <code>s-1</code> ok · 10 min ago" in status  # stale heartbeat

        top = await ask("/top")
        lines = top.splitlines()
        assert lines[0].startswith("<b>Top 10</b>") and len(lines) == 11
        assert lines[1].startswith("1. 🟢 <b>TOP1USDT</b> long · score 99.0") and "OLD" not in top

        pos = await ask("/positions")
        assert (
            "<b>BTCUSDT</b> long 5x · entry 60,000.00 · now 61,200.00 · <b>+2.00%</b> (+10.00% on margin)"
            in pos
        )
        assert "<b>ETHUSDT</b> short 2x" in pos and "<b>-2.00%</b> (-4.00% on margin)" in pos

        today = await ask("/pnl")
        assert (
            "<b>PnL · today</b>" in today
            and "Closed trades: 1 (1 won, 0 lost, 100% win rate)" in today
        )
        assert "+20.00 USDT" in today
        week = await ask("/pnl 7d")
        assert "Closed trades: 2 (1 won, 1 lost, 50% win rate)" in week and "+10.00 USDT" in week
        everything = await ask("/pnl all")
        assert "Closed trades: 3" in everything and "+40.00 USDT" in everything
        assert "Usage" in await ask("/pnl yesterday")

        board = await ask("/scanners")
        blines = board.splitlines()
        assert blines[1].startswith(
            "1. <b>cluster_scanner</b> 1.0.0 · 1 signals · 1 trades · win 100%"
        )
        assert blines[2].startswith("2. <b>ranker</b> 1.0.0 · 2 signals · 2 trades · win 50%")

        # someone else: no answer at all, not even to the pause command
        telegram.push_message(555123, "/pause", username="intruder")
        assert "<b>Top 10</b>" in await ask("/top")  # handled after the intruder's message
        assert telegram.sent(555123) == [] and not (await ks.state()).active

        paused = await ask("/pause maintenance")
        assert "Paused" in paused and "maintenance" in paused
        state = await ks.state()
        assert state.active and state.reason == "maintenance" and state.by == f"telegram:{ADMIN_ID}"
        assert "ENGAGED" in await ask("/status")
        assert "Resumed" in await ask("/resume")
        assert not (await ks.state()).active

        assert "No open position in SOLUSDT" in await ask("/close SOLUSDT")
        assert "Close of <b>BTCUSDT</b> requested" in await ask("/close btcusdt")
        assert "Usage" in await ask("/close")

    entries = await fresh_redis.xrange(
        f"{fresh.settings.bus_namespace}:stream:{STREAM_TRADE_COMMANDS}"
    )
    events = [Envelope.model_validate_json(f[b"e"]) for _, f in entries]
    assert [(e.type, e.payload["symbol"], e.payload["requested_by"]) for e in events] == [
        ("position.close_requested", "BTCUSDT", f"telegram:{ADMIN_ID}")
    ]
    journal = await fresh_redis.xrange(f"{fresh.settings.bus_namespace}:stream:agent_logs")
    refused = [p for p in (Envelope.model_validate_json(f[b"e"]).payload for _, f in journal)
               if p["event_type"] == "telegram.refused"]  # fmt: skip
    assert [(r["detail"]["user_id"], r["detail"]["text"]) for r in refused] == [(555123, "/pause")]


async def test_a_refused_token_neither_crashes_the_service_nor_stops_it_trying(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, telegram: FakeTelegram
) -> None:
    from pydantic import SecretStr

    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **{**telegram_settings(telegram),
                                                   "telegram_bot_token": SecretStr("999:revoked")})  # fmt: skip
    stop = __import__("asyncio").Event()
    task = __import__("asyncio").create_task(svc.run(stop))
    try:
        await aeventually(
            lambda: len(telegram.named("getMe")) >= 2, timeout=30
        )  # refused, tried again
        assert not task.done()  # still running: the sending side goes on without control
    finally:
        stop.set()
        await task


async def test_a_malformed_get_updates_answer_backs_off_and_logs_once_per_interval(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, telegram: FakeTelegram, caplog: Any
) -> None:
    """`{"ok": true, "result": true}` made PTB's own polling loop spin and log ~100,000
    critical lines in 4 minutes. Ours waits a jittered back-off after each failure and logs
    the repeated failure once per interval; then it recovers by itself."""
    import asyncio
    import time

    from structlog.testing import capture_logs

    from quantcore.backoff import Backoff
    from svc_broadcaster.control import TelegramControl

    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    tc = TelegramControl(svc.ctx.settings, svc.control, log_interval_s=3.0, poll_timeout_s=1,
                         backoff=Backoff(base_s=0.2, max_s=1.0, floor_s=0.1))  # fmt: skip
    telegram.updates_answer = True
    lost = asyncio.Event()
    seconds = 8.0
    with capture_logs() as logs:
        task = asyncio.create_task(tc.run(lost))
        started = time.monotonic()
        await asyncio.sleep(seconds)  # the duration under test, not a wait for a condition
        failing = [e for e in logs if e["log_level"] in ("warning", "error", "critical")]
        polls = len(telegram.named("getUpdates"))
        telegram.updates_answer = None
        telegram.push_message(ADMIN_ID, "/status")
        await aeventually(lambda: telegram.sent(ADMIN_ID), timeout=20)
        lost.set()
        await asyncio.wait_for(task, timeout=20)
    elapsed = time.monotonic() - started
    assert 1 <= len(failing) <= 1 + elapsed / 3.0  # once per interval, not once per attempt
    # and no line from the Telegram library itself (PTB logs a critical line per bad answer)
    assert [r.getMessage()[:80] for r in caplog.records if r.levelno >= 30] == []
    assert all("getUpdates failed" in e["event"] for e in failing)
    assert tc.repeats.lines >= 2  # first failure ... recovered
    assert any(e["event"] == "telegram getUpdates works again" for e in logs)
    assert 3 <= polls <= seconds / 0.1  # backed off: a hot loop makes thousands
    assert tc.answered == 1


async def test_malformed_updates_are_rejected_one_by_one_and_the_rest_still_answered(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, telegram: FakeTelegram
) -> None:
    """A batch of fuzzed updates (wrong types, missing fields, random JSON) around a valid
    admin command: each bad one is rejected and skipped, the command is answered, nothing else
    is sent, and the loop keeps going."""
    import asyncio
    import random

    from quantcore.backoff import Backoff
    from svc_broadcaster.control import TelegramControl

    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    tc = TelegramControl(svc.ctx.settings, svc.control, poll_timeout_s=1,
                         backoff=Backoff(base_s=0.2, max_s=1.0, floor_s=0.1))  # fmt: skip
    rng = random.Random(17)
    junk: list[Any] = [None, 7, "text", [], {}, {"update_id": "x"}, {"update_id": True}]
    for n in range(200):
        uid = 1000 + n
        kind = n % 5
        if kind == 0:
            junk.append({"update_id": uid, "message": rng.choice([None, 5, "x", [], {"text": 3}])})
        elif kind == 1:
            junk.append({"update_id": uid, "message": {"message_id": "m", "date": "now",
                                                       "chat": {"id": "c"}, "text": "/pause"}})  # fmt: skip
        elif kind == 2:
            junk.append({"update_id": uid, "message": {"message_id": uid, "date": 1,
                         "chat": {"id": 555, "type": "private"}, "from": {"id": 555},
                         "text": "/pause"}})  # fmt: skip
        elif kind == 3:
            junk.append(
                {"update_id": uid, rng.choice(["edited_message", "poll", "zzz"]): {"a": [1, {}]}}
            )
        else:
            junk.append({"update_id": uid, "message": {"message_id": uid, "date": 1,
                         "chat": {"id": rng.randint(-10**12, 10**12), "type": rng.choice(["private", "group", "?"])},
                         "from": {"id": rng.randint(1, 10**9), "is_bot": False, "first_name": "x" * rng.randint(0, 5000)},
                         "text": "".join(rng.choice("/abc é😀\x00") for _ in range(rng.randint(0, 300)))}})  # fmt: skip
    lost = asyncio.Event()
    task = asyncio.create_task(tc.run(lost))
    try:
        await aeventually(lambda: tc.polls >= 1, timeout=20)  # pending updates dropped at start
        telegram.updates.extend(junk)
        telegram.push_message(ADMIN_ID, "/status")  # behind the junk, in the same batch
        telegram.new_update.set()
        await aeventually(lambda: telegram.sent(ADMIN_ID), timeout=30)
        assert not task.done()
    finally:
        lost.set()
        await asyncio.wait_for(task, timeout=20)
    assert tc.answered == 1 and len(telegram.sent()) == 1  # only the admin's /status
    assert tc.rejected >= 40  # the malformed ones, each rejected with a reason
    assert not (await KillSwitch(fresh_redis, fresh.settings.bus_namespace).state()).active


async def test_telegram_pause_and_quant_pause_do_the_same_thing(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    """One control surface: `/pause` on Telegram and `quant pause` leave the same kill-switch
    state and the same journal entry (only who asked differs); so do resume and close."""
    await seed(fresh_pool)
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    ks = KillSwitch(fresh_redis, fresh.settings.bus_namespace)
    journal_key = f"{fresh.settings.bus_namespace}:stream:{AGENT_LOG_STREAM}"
    commands_key = f"{fresh.settings.bus_namespace}:stream:{STREAM_TRADE_COMMANDS}"

    async def journal() -> list[tuple[str, str, str, str]]:
        out = []
        for _, f in await fresh_redis.xrange(journal_key):
            e = Envelope.model_validate_json(f[b"e"])
            p = e.payload
            out.append((p["event_type"], p["level"], p["message"], p["detail"].get("by", "")))
        return out

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "quantcore.cli", *args],
                              env={**os.environ, **fresh.env}, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    async def ask(text: str) -> str:
        before = len(telegram.sent(ADMIN_ID))
        telegram.push_message(ADMIN_ID, text)
        await aeventually(lambda: len(telegram.sent(ADMIN_ID)) > before, timeout=20)
        return str(telegram.sent(ADMIN_ID)[-1].params["text"])

    async with running(svc):
        await aeventually(lambda: telegram.named("getUpdates"), timeout=20)
        assert "Paused" in await ask("/pause")
        by_telegram = await ks.state()
        assert "Resumed" in await ask("/resume")
        assert "Close of <b>BTCUSDT</b> requested" in await ask("/close BTCUSDT")
        assert "No open position in SOLUSDT" in await ask("/close SOLUSDT")

    done = cli("pause")
    assert done.returncode == 0, done.stderr
    by_cli = await ks.state()
    assert cli("resume").returncode == 0
    assert cli("close", "btcusdt").returncode == 0
    nothing = cli("close", "SOLUSDT")
    assert nothing.returncode == 0 and "no open position in SOLUSDT" in nothing.stdout
    bad = cli("close", "not a symbol!")
    assert bad.returncode == 2 and "not a symbol" in bad.stderr

    # the same state: active, the same default reason; only `by` differs
    assert by_telegram.active and by_cli.active
    assert by_telegram.reason == by_cli.reason == "paused by the owner"
    assert (by_telegram.by, by_cli.by) == (f"telegram:{ADMIN_ID}", "cli")
    assert not (await ks.state()).active

    # the same journal entries, in the same order, from both front ends
    tg = f"telegram:{ADMIN_ID}"
    entries = await aeventually(lambda: journal_if(journal, 6), timeout=10)
    same = [(t, lv, m.replace(tg, "WHO").replace("cli", "WHO"), by) for t, lv, m, by in entries]
    assert [s[:3] for s in same[:3]] == [s[:3] for s in same[3:]]
    assert [s[0] for s in same[:3]] == [
        "killswitch.engaged",
        "killswitch.released",
        "position.close_requested",
    ]
    assert [e[3] for e in entries] == [tg, tg, tg, "cli", "cli", "cli"]

    # each close request reached the position monitor's stream once, SOLUSDT never
    requested = [Envelope.model_validate_json(f[b"e"]).payload
                 for _, f in await fresh_redis.xrange(commands_key)]  # fmt: skip
    assert [(p["symbol"], p["requested_by"]) for p in requested] == [
        ("BTCUSDT", tg),
        ("BTCUSDT", "cli"),
    ]


async def journal_if(read: Any, n: int) -> list[tuple[str, str, str, str]] | None:
    rows: list[tuple[str, str, str, str]] = await read()
    return rows if len(rows) >= n else None
