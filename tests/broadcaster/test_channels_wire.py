"""Each real client library against a fake that speaks its service's wire protocol: what the
fake received (text, chat id, parse mode, escaping, auth) is what the owner's people get."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from quantcore.bus import Bus
from quantcore.model.events import STREAM_POSITIONS, STREAM_SIGNALS, PositionClosed
from quantcore.testing import Sandbox
from svc_broadcaster.channels.email import message_id
from tests.broadcaster.conftest import (
    CHANNEL,
    SMTP_PASS,
    SMTP_USER,
    TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
    make_broadcaster,
    planned,
    rows,
    running,
    signal,
    telegram_settings,
)
from tests.conftest import aeventually
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.x import FakeX

SCANNER = 'spike<v2>&"co"'  # characters that break HTML if not escaped


def all_channels(telegram: FakeTelegram, xfake: FakeX, twilio: FakeTwilio,
                 smtp: FakeSmtp) -> dict[str, Any]:  # fmt: skip
    return {
        **telegram_settings(telegram),
        "x_api_key": SecretStr("xkey"), "x_api_secret": SecretStr("xsecret"),
        "x_access_token": SecretStr("xtoken"), "x_access_secret": SecretStr("xtsecret"),
        "x_api_base_url": xfake.url,
        "twilio_account_sid": TWILIO_SID, "twilio_auth_token": SecretStr(TWILIO_TOKEN),
        "twilio_phone": "+15550001111", "sms_admin_phone": "+15552223333",
        "twilio_api_base_url": twilio.url,
        "email_user": SMTP_USER, "email_pass": SecretStr(SMTP_PASS),
        "email_smtp_host": "127.0.0.1", "email_smtp_port": smtp.port,
        "email_smtp_ca_file": smtp.ca_file, "email_to": "owner@whalestack.test",
        "bybit_ref_code": "WHALE&1", "broadcast_sms_min_score": 90.0,
    }  # fmt: skip


async def test_a_signal_reaches_every_channel_through_its_real_client(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram, xfake: FakeX,
    twilio: FakeTwilio, smtp: FakeSmtp,
) -> None:  # fmt: skip
    svc = make_broadcaster(
        fresh, fresh_pool, fresh_redis, **all_channels(telegram, xfake, twilio, smtp)
    )
    strong = planned("BTCUSDT", score=95.5, scanner=SCANNER)
    weak = signal("ETHUSDT", score=42.0, direction="short")
    async with running(svc):
        env = await bbus.publish(STREAM_SIGNALS, strong)
        await bbus.publish(STREAM_SIGNALS, weak)
        await aeventually(lambda: len(telegram.sent()) == 2 and len(xfake.calls) == 2
                          and len(smtp.received) == 2 and len(twilio.calls) == 1)  # fmt: skip

    # Telegram: HTML parse mode, to the main channel, special characters escaped
    tg = next(c for c in telegram.sent() if "BTCUSDT" in c.params["text"])
    assert tg.params["chat_id"] == CHANNEL
    assert tg.params["parse_mode"] == "HTML"
    text = tg.params["text"]
    assert 'spike&lt;v2&gt;&amp;"co"' in text and SCANNER not in text
    assert "<b>LONG BTCUSDT</b>" in text and "score <b>95.5</b>" in text
    # the plan the autotrader trades: the whole ladder, its SL and TP (not the event's flat fields)
    assert (
        "Entry <code>69,000.00 / 68,310.00 / 67,620.00</code> (scaled, avg <code>68,080.00</code>)"
        "\nSL <code>66,943.80</code> · TP <code>71,142.50</code> · reward:risk 2.70"
    ) in text
    assert "65,000.50" not in text and "63,000.25" not in text
    assert "PAPER · SIMULATED DATA" in text  # not live, not real data: said so
    assert 'href="https://www.bybit.com/invite?ref=WHALE&amp;1"' in text
    assert f"/bot{TOKEN}/sendMessage" not in text  # the token never ends up in a message

    # X: JSON body through tweepy, OAuth 1.0a, plain text unescaped, cashtag
    post = next(c for c in xfake.calls if "BTCUSDT" in c.params["text"])
    assert (
        post.headers["Authorization"].startswith("OAuth ")
        and 'oauth_consumer_key="xkey"' in post.headers["Authorization"]
    )
    assert "$BTCUSDT" in post.params["text"] and f"Scanner: {SCANNER}" in post.params["text"]
    assert post.params["text"].startswith("PAPER · SIMULATED DATA\n")
    assert len(post.params["text"]) <= 280

    # SMS: only the high-conviction signal (score 95.5 >= 90); form fields and Basic auth
    (sms,) = twilio.calls
    assert sms.params["To"] == "+15552223333" and sms.params["From"] == "+15550001111"
    assert sms.params["Body"].startswith("PAPER · SIMULATED DATA\nLONG BTCUSDT score 95.5")
    assert f"({SCANNER})" in sms.params["Body"]

    # Email: STARTTLS, login, subject encoded and decoded back, stable Message-ID
    mail = next(m for m in smtp.received if "BTCUSDT" in str(m.message["Subject"]))
    assert mail.tls and mail.login == SMTP_USER
    assert mail.rcpt_tos == ["owner@whalestack.test"] and mail.mail_from == SMTP_USER
    assert (
        mail.message["Subject"] == "[Whale Stack] LONG BTCUSDT · score 95.5 PAPER · SIMULATED DATA"
    )
    assert mail.message["Message-ID"] == message_id(f"signal:{strong.signal_id}")
    body = mail.message.get_content()
    assert f"Scanner: {SCANNER} 1.0.0+abc" in body and "Stop loss:    66,943.80" in body
    assert (
        "Entry:        69,000.00 / 68,310.00 / 67,620.00 (scaled: 3 order(s), average 68,080.00)"
        in body
    )

    # records: every attempt and decision, with provider ids
    recs = await rows(fresh_pool, "SELECT channel, status, provider_message_id, error, event_id FROM broadcasts "
                      "WHERE event_type = 'signal' ORDER BY channel, status")  # fmt: skip
    by = {(r[0], r[1]): r for r in recs}
    assert {(r[0], r[1]) for r in recs} == {
        ("email", "sent"),
        ("sms", "sent"),
        ("sms", "skipped"),
        ("telegram", "sent"),
        ("x", "sent"),
    }
    assert len(recs) == 8  # 4 channels × 2 signals, SMS skipped once
    assert "below sms's minimum 90" in by[("sms", "skipped")][3]
    assert by[("sms", "sent")][2].startswith("SM") and by[("sms", "sent")][4] == env.id


async def test_an_exit_shows_the_pnl_and_a_repeat_is_not_sent_again(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    import uuid
    from datetime import UTC, datetime, timedelta

    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram),
                           trading_mode="paper", data_source="bybit")  # fmt: skip
    now = datetime.now(UTC)
    closed = PositionClosed(
        trade_id=uuid.uuid4(), time=now, symbol="SOLUSDT", direction="short", venue="paper",
        agent="autotrader", signal_id=uuid.uuid4(), scanner="ranker", scanner_version="1.0.0",
        score=77.0, entry_price=150.0, exit_price=144.0, qty=2.0, leverage=5.0,
        close_reason="tp", pnl_quote=11.5, pnl_pct_price=4.0, pnl_pct_margin=19.6,
        opened_at=now - timedelta(hours=2, minutes=5),
    )  # fmt: skip
    async with running(svc):
        await bbus.publish(STREAM_POSITIONS, closed)
        await bbus.publish(STREAM_POSITIONS, closed)  # delivered twice (at least once upstream)
        sentinel = closed.model_copy(update={"trade_id": uuid.uuid4(), "symbol": "XRPUSDT"})
        await bbus.publish(STREAM_POSITIONS, sentinel)  # read after the repeat
        await aeventually(lambda: len(telegram.sent()) >= 2)
    texts = [c.params["text"] for c in telegram.sent()]
    assert len(texts) == 2 and sum("SOLUSDT" in t for t in texts) == 1
    text = next(t for t in texts if "SOLUSDT" in t)
    assert "<b>Closed SHORT SOLUSDT</b> (tp): <b>+4.00%</b> (+19.60% on margin)" in text
    assert "held 2h 05m" in text and "PnL +11.50 USDT" in text
    assert text.startswith("<i>PAPER</i>")  # paper on real data: PAPER only
    assert await rows(fresh_pool, "SELECT count(*) FROM broadcasts WHERE status = 'sent'") == [(2,)]
