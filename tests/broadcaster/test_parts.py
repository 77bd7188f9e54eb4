"""Templates, the shared limiter and the daily digest, on their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from quantcore.config import Settings
from quantcore.testing import Sandbox
from svc_broadcaster import templates
from svc_broadcaster.limiter import SharedLimiter
from svc_broadcaster.messages import fmt_price, from_event, mode_banner
from tests.broadcaster.conftest import make_broadcaster, planned, rows, signal, telegram_settings
from tests.fakes.telegram import FakeTelegram


def test_prices_keep_six_significant_digits_without_exponents() -> None:
    assert fmt_price(65000.5) == "65,000.50"
    assert fmt_price(0.000012345) == "0.000012345"
    assert fmt_price(1.234567) == "1.23457"
    assert fmt_price(None) == "-"


def test_the_mode_banner_says_what_is_not_real() -> None:
    assert mode_banner("paper", "sim") == "PAPER · SIMULATED DATA"
    assert mode_banner("testnet", "bybit") == "TESTNET"
    assert mode_banner("live", "bybit") == ""


def test_an_owner_template_replaces_the_shipped_one_but_cannot_hide_the_mode(
    tmp_path: Path, settings: Settings
) -> None:
    shipped = (templates.SHIPPED / "telegram.toml").read_text()
    own = shipped.replace('text = """\n<i>$mode</i>\n$arrow <b>$direction_upper $symbol</b>',
                          'text = """\nNEW SIGNAL $symbol by $scanner', 1)  # fmt: skip
    (tmp_path / "telegram.toml").write_text(own)
    tpl = templates.load("telegram", tmp_path)
    assert tpl.source == tmp_path / "telegram.toml"
    msg = from_event(signal("BTCUSDT", scanner="a<b"), __import__("uuid").uuid4(), settings)
    assert msg is not None
    text = tpl.render("signal", msg.fields, "").text
    assert text.startswith("PAPER · SIMULATED DATA\nNEW SIGNAL BTCUSDT by a&lt;b")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("$scanner_version", "$no_such_field"),
        ("[digest]", "[digst]"),
        ('format = "html"', 'format = "md"'),
    ],
)
def test_a_broken_owner_template_is_refused_and_the_shipped_one_used(
    tmp_path: Path, change: str, why: str
) -> None:
    shipped = (templates.SHIPPED / "telegram.toml").read_text()
    assert change in shipped
    (tmp_path / "telegram.toml").write_text(shipped.replace(change, why))
    assert templates.load("telegram", tmp_path).source == templates.SHIPPED / "telegram.toml"


def test_every_shipped_template_loads_and_fits_its_channel(settings: Settings) -> None:
    msg = from_event(signal("BTCUSDT"), __import__("uuid").uuid4(), settings)
    assert msg is not None
    for channel in ("telegram", "x", "email", "sms"):
        tpl = templates.load(channel, None)  # type: ignore[arg-type]
        rendered = tpl.render("signal", msg.fields, tpl.affiliate_text({"bybit": "REF1"}))
        assert "BTCUSDT" in rendered.text and len(rendered.text) <= templates.MAX_LENGTH[channel]
        assert (rendered.subject is not None) == (channel == "email")


async def test_the_shared_limiter_holds_every_window_across_replicas(
    fresh_redis: Any, fresh: Sandbox
) -> None:
    ns = fresh.settings.bus_namespace
    a = SharedLimiter(fresh_redis, ns, "telegram", [(2, 1.0), (3, 60.0)])
    b = SharedLimiter(fresh_redis, ns, "telegram", [(2, 1.0), (3, 60.0)])  # another replica
    first, second, third = await a.take(), await b.take(), await a.take()
    assert first.granted and first.left == 2 and second.granted and second.left == 1
    assert not third.granted and 0 < third.wait_s <= 1.0  # 2 per second
    await asyncio.sleep(third.wait_s + 0.05)
    fourth, fifth = await b.take(), await a.take()
    assert fourth.granted and fourth.left == 0
    assert not fifth.granted and fifth.wait_s > 50  # 3 per minute
    await a.pause(5.0)
    paused = await b.take()
    assert not paused.granted


async def test_the_daily_digest_is_queued_once_whichever_replicas_try(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, telegram: FakeTelegram
) -> None:
    one = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram),
                           broadcast_daily_digest_at="20:00", timezone="UTC")  # fmt: skip
    two = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram),
                           broadcast_daily_digest_at="20:00", timezone="UTC")  # fmt: skip
    before = datetime(2026, 3, 1, 19, 59, tzinfo=UTC)
    after = datetime(2026, 3, 1, 20, 1, tzinfo=UTC)
    assert await one.daily_digest(before) == 0
    queued = await asyncio.gather(
        one.daily_digest(after), two.daily_digest(after), one.daily_digest(after)
    )
    assert sum(queued) == 1
    (row,) = await rows(
        fresh_pool, "SELECT channel, dedup_key, state, fields->>'date' FROM broadcast_dedup"
    )
    assert row == ("telegram", "daily:2026-03-01", "pending", "2026-03-01")


def test_every_kind_renders_on_every_channel(settings: Settings) -> None:
    import uuid
    from datetime import timedelta

    from quantcore.model.events import PositionClosed, PositionOpened, PositionStopMoved
    from svc_broadcaster.messages import daily_message

    now = datetime.now(UTC)
    common: dict[str, Any] = {"trade_id": uuid.uuid4(), "time": now, "symbol": "ETHUSDT",
                              "direction": "short", "venue": "testnet", "agent": "autotrader",
                              "scanner": "ranker", "scanner_version": "1.0.0", "score": 81.0}  # fmt: skip
    events = [
        PositionOpened(**common, entry_price=3000.0, qty=0.5, leverage=10, stop_loss=3100.0,
                       take_profit=2800.0),
        PositionStopMoved(**common, old_stop=3100.0, new_stop=2990.0, price=2950.0,
                          profit_pct=16.7, profit_basis="margin", ladder_step=2),
        PositionClosed(**common, entry_price=3000.0, exit_price=2850.0, qty=0.5, leverage=10,
                       close_reason="trailing_sl", pnl_quote=74.1, pnl_pct_price=5.0,
                       pnl_pct_margin=49.4, opened_at=now - timedelta(minutes=90)),
    ]  # fmt: skip
    msgs = [from_event(e, uuid.uuid4(), settings) for e in events]
    msgs.append(daily_message("2026-03-01", {
        "signals": 4, "trades_closed": 2, "wins": 1, "losses": 1, "win_rate": "50.00%",
        "pnl_quote": "+12.00", "pnl_pct_margin": "+8.00%", "open_positions": 1,
        "best": "SOLUSDT +4.00%", "worst": "XRPUSDT -2.00%"}, settings))  # fmt: skip
    for channel in ("telegram", "x", "email", "sms"):
        tpl = templates.load(channel, None)  # type: ignore[arg-type]
        for m in msgs:
            assert m is not None
            text = tpl.render(m.kind, m.fields, "").text
            assert "$" not in text.replace("$ETHUSDT", "")  # every placeholder filled
            assert m.fields["mode"] in tpl.render(m.kind, m.fields, "").text.replace("&amp;", "&")
        lines = [tpl.line(m.kind, m.fields) for m in msgs if m is not None]
        digest = tpl.digest(lines, "1 entry, 1 exit", "TESTNET", "")
        assert digest.text.count("\n") >= len(lines) - 1 and "TESTNET" in digest.text
    closed = msgs[2]
    assert (
        closed is not None
        and closed.fields["pnl_pct"] == "+5.00%"
        and closed.fields["held"] == "1h 30m"
    )
    assert (
        closed.dedup_key == f"exit:{common['trade_id']}"
        and closed.fields["mode"] == "TESTNET · SIMULATED DATA"
    )


async def test_a_dead_senders_claims_are_resolved_per_channel(fresh_pool: Any) -> None:
    import uuid

    from svc_broadcaster import outbox
    from svc_broadcaster.outbox import NewItem

    msg = from_event(signal("BTCUSDT"), uuid.uuid4(), Settings())
    assert msg is not None
    async with fresh_pool.connection() as conn, conn.transaction():
        await outbox.insert_items(conn, [NewItem("telegram", msg), NewItem("email", msg)])
        for ch in ("telegram", "email"):
            claimed = await outbox.claim(conn, ch, 1, uuid.uuid4(), "dead", 0.0)
            await conn.execute("UPDATE broadcast_dedup SET state = 'sending', claimed_until = now() - "
                               "interval '1 s' WHERE channel = %s", (ch,))  # fmt: skip
            assert len(claimed) == 1
    async with fresh_pool.connection() as conn, conn.transaction():
        _, doubtful = await outbox.resolve_stale_claims(conn, "telegram", resend_in_doubt=False)
        returned, none = await outbox.resolve_stale_claims(conn, "email", resend_in_doubt=True)
    assert len(doubtful) == 1 and doubtful[0][0].dedup_key == msg.dedup_key
    assert returned == 1 and none == []
    states = dict(await rows(fresh_pool, "SELECT channel, state FROM broadcast_dedup"))
    assert states == {"telegram": "failed", "email": "pending"}  # email resends: same Message-ID


def test_a_signal_announces_the_plan_it_carries_on_every_channel(settings: Settings) -> None:
    """The ranker attaches the decision's plan; the autotrader trades that decision. Every
    channel shows that plan's ladder, SL and TP — never the event's other numbers. A
    hand-made signal without a plan shows its own."""
    import uuid

    sig = planned("BTCUSDT")
    assert sig.plan is not None and len(sig.plan.orders) == 3
    msg = from_event(sig, uuid.uuid4(), settings)
    assert msg is not None
    ladder = " / ".join(fmt_price(float(p)) for p in sig.plan.entries)
    assert msg.fields["entry"] == ladder == "69,000.00 / 68,310.00 / 67,620.00"
    assert msg.fields["stop_loss"] == fmt_price(float(sig.plan.stop_loss)) == "66,943.80"
    assert msg.fields["take_profit"] == fmt_price(float(sig.plan.take_profit)) == "71,142.50"
    assert (msg.fields["entry_mode"], msg.fields["orders"]) == ("scaled", "3")
    for channel in ("telegram", "x", "email", "sms"):
        text = templates.load(channel, None).render("signal", msg.fields, "").text  # type: ignore[arg-type]
        assert ladder in text and "66,943.80" in text and "71,142.50" in text, channel
        assert "65,000.50" not in text and "63,000.25" not in text, channel  # the event's
    bare = from_event(signal("BTCUSDT"), uuid.uuid4(), settings)
    assert bare is not None and bare.fields["entry"] == "65,000.50"
    assert (bare.fields["stop_loss"], bare.fields["orders"]) == ("63,000.25", "1")
