"""Poly and hybrid signals through the broadcaster: templates of every channel, and the real
Telegram client against the fake Bot API (sent once, however often the event is delivered)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from quantcore.bus import Bus
from quantcore.config import Settings
from quantcore.model.events import (
    STREAM_POLY_POSITIONS,
    STREAM_POLY_SIGNALS,
    HybridSignalFired,
    PolyPositionChanged,
    PolySignalFired,
)
from quantcore.testing import Sandbox
from svc_broadcaster import templates
from svc_broadcaster.messages import from_event
from tests.broadcaster.conftest import make_broadcaster, rows, running, telegram_settings
from tests.conftest import aeventually
from tests.fakes.telegram import FakeTelegram

NOW = datetime.now(UTC).replace(microsecond=0)
COND = "0x" + "ab" * 32


def poly_signal(**over: Any) -> PolySignalFired:
    values: dict[str, Any] = {
        "time": NOW, "condition_id": COND, "token_id": "123", "question": "Will BTC be above 120k on Friday?",
        "outcome": "Yes", "market_price": 0.47, "implied_prob": 0.66, "edge": 0.19, "criteria_met": 6,
        "criteria_total": 7, "passed": ["liquidity_and_spread", "smart_wallets_same_side"], "smart_wallets": 4,
        "suggested_size_usd": 90.0, "scanner": "poly_scanner", "scanner_version": "1.0.0+abc",
    }  # fmt: skip
    values.update(over)
    return PolySignalFired(**values)


def hybrid() -> HybridSignalFired:
    return HybridSignalFired(
        time=NOW, signal_time=NOW - timedelta(minutes=5), condition_id=COND, token_id="123",
        question="Will BTC be above 120k on Friday?", outcome="Yes", symbol="BTCUSDT",
        reasons=["oi_spike", "top10"], perp_rank=3, edge=0.19, criteria_met=6, criteria_total=7,
        scanner="poly_scanner", scanner_version="1.0.0+abc",
    )  # fmt: skip


def test_poly_kinds_render_on_every_channel() -> None:
    settings = Settings()
    msgs = [
        from_event(poly_signal(), uuid.uuid4(), settings),
        from_event(hybrid(), uuid.uuid4(), settings),
    ]
    for channel in ("telegram", "x", "email", "sms"):
        tpl = templates.load(channel, None)  # type: ignore[arg-type]
        for m in msgs:
            assert m is not None and m.vertical == "poly"
            text = tpl.render(m.kind, m.fields, "").text
            assert "$" not in text and len(text) <= templates.MAX_LENGTH[channel]
            assert "BTC" in text and "+19.0 pts" in text
    sig, hyb = msgs
    assert sig is not None and sig.dedup_key == f"poly_signal:{COND}:123:{NOW.isoformat()}"
    assert sig.score is not None and round(sig.score, 1) == 85.7
    assert hyb is not None and hyb.dedup_key.endswith(":BTCUSDT")


async def test_poly_and_hybrid_signals_reach_telegram_once(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    async with running(svc):
        await bbus.publish(STREAM_POLY_SIGNALS, poly_signal())
        await bbus.publish(STREAM_POLY_SIGNALS, poly_signal())  # re-published: not sent again
        await bbus.publish(STREAM_POLY_SIGNALS, hybrid())
        await aeventually(lambda: len(telegram.sent()) >= 2)
    texts = [c.params["text"] for c in telegram.sent()]
    assert len(texts) == 2
    assert any("<b>Polymarket: Yes</b>" in t and "edge <b>+19.0 pts</b>" in t for t in texts)
    assert any("<b>Hybrid: BTCUSDT</b>" in t and "oi_spike, top10" in t for t in texts)
    sent = await rows(fresh_pool, "SELECT count(*) FROM broadcasts WHERE status = 'sent'")
    assert sent == [(2,)]


def poly_trade(kind: str = "exit") -> PolyPositionChanged:
    return PolyPositionChanged(
        kind=kind, time=NOW, agent="poly_copy", venue="paper", condition_id=COND, token_id="123",  # type: ignore[arg-type]
        question="Will BTC be above 120k on Friday?", outcome="Yes", order_id="pc-1-x1",
        signal_key="k", shares=10.0, price=0.55, held_after=90.0, cost_usd=4.7, pnl_usd=0.8,
        pnl_pct=17.02, reason="edge_decayed",
    )  # fmt: skip


def test_poly_trades_render_on_every_channel() -> None:
    settings = Settings()
    for kind in ("entry", "exit", "resolution"):
        m = from_event(poly_trade(kind), uuid.uuid4(), settings)
        assert m is not None and m.kind == "poly_trade" and m.vertical == "poly"
        for channel in ("telegram", "x", "email", "sms"):
            tpl = templates.load(channel, None)  # type: ignore[arg-type]
            text = tpl.render(m.kind, m.fields, "").text
            assert "$" not in text and len(text) <= templates.MAX_LENGTH[channel]
            assert "BTC" in text and "+17.02%" in text and "PAPER" in text


async def test_poly_trades_reach_telegram_once(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    async with running(svc):
        await bbus.publish(STREAM_POLY_POSITIONS, poly_trade())
        await bbus.publish(STREAM_POLY_POSITIONS, poly_trade())  # re-published: not sent again
        await aeventually(lambda: len(telegram.sent()) >= 1)
        await bbus.publish(STREAM_POLY_POSITIONS, poly_trade("resolution"))
        await aeventually(lambda: len(telegram.sent()) >= 2)
    texts = [c.params["text"] for c in telegram.sent()]
    assert len(texts) == 2
    assert any("Polymarket copy stepped out" in t and "edge_decayed" in t for t in texts)
    assert any("Polymarket copy resolved" in t for t in texts)


def test_a_resolution_is_announced_as_won_or_lost() -> None:
    """Redemption pays 1 a share (won) or 0 (lost): the message says which, on every channel,
    and it is neither an entry nor an exit (its own action and de-duplication key)."""
    settings = Settings()
    won = poly_trade("resolution").model_copy(
        update={"price": 1.0, "pnl_usd": 4.2, "pnl_pct": 89.4}
    )
    lost = poly_trade("resolution").model_copy(
        update={"price": 0.0, "pnl_usd": -4.7, "pnl_pct": -100.0}
    )
    keys = set()
    for event, word, result in ((won, "won", "✅"), (lost, "lost", "❌")):
        m = from_event(event, uuid.uuid4(), settings)
        assert m is not None and m.fields["action"] == f"resolved: {word}"
        keys.add(m.dedup_key)
        for channel in ("telegram", "x", "email", "sms"):
            text = templates.load(channel, None).render(m.kind, m.fields, "").text  # type: ignore[arg-type]
            assert f"resolved: {word}" in text
        assert m.fields["result"] == result
    exit_msg = from_event(poly_trade("exit"), uuid.uuid4(), settings)
    entry_msg = from_event(poly_trade("entry"), uuid.uuid4(), settings)
    assert exit_msg is not None and entry_msg is not None
    assert len(keys | {exit_msg.dedup_key, entry_msg.dedup_key}) == 3  # won/lost share one order id
