"""Volume control: a flood becomes digests within the channel's limit, nothing is lost; the
faults of a provider are waited out, retried, or recorded once."""

from __future__ import annotations

import re
from typing import Any

from quantcore.bus import Bus
from quantcore.model.events import STREAM_SIGNALS
from quantcore.service import AGENT_LOG_STREAM
from quantcore.testing import Sandbox
from svc_broadcaster.sender import down_key
from tests.broadcaster.conftest import (
    CHANNEL,
    make_broadcaster,
    rows,
    running,
    signal,
    telegram_settings,
)
from tests.conftest import aeventually
from tests.fakes.http import Fault
from tests.fakes.telegram import FakeTelegram, retry_after

FLOOD = 1000


def most_in_any_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


async def final_count(pool: Any, channel: str = "telegram") -> int:
    r = await rows(pool, "SELECT count(*) FROM broadcast_dedup WHERE channel = %s AND state IN "
                   "('sent', 'digested', 'failed', 'skipped')", channel)  # fmt: skip
    return int(r[0][0])


async def test_a_flood_of_signals_goes_out_as_digests_within_the_rate_and_nothing_is_lost(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram),
                           broadcast_telegram_rate="20/60")  # fmt: skip
    signals = [signal(f"C{i:04d}USDT", score=50 + i % 50) for i in range(1, FLOOD + 1)]
    async with running(svc):
        envs = await bbus.publish_many(STREAM_SIGNALS, signals)
        await aeventually(lambda: final_count(fresh_pool), timeout=10)  # started
        await aeventually(lambda: _all_final(fresh_pool), timeout=180)

    sent = telegram.sent(CHANNEL)
    times = [c.at for c in sent]
    print(f"\nflood: {FLOOD} signals -> {len(sent)} Telegram messages")
    assert most_in_any_window(times, 60.0) <= 20  # Telegram's group limit, as configured
    symbols = [s for c in sent for s in re.findall(r"C\d{4}USDT", c.params["text"])]
    assert sorted(symbols) == sorted(s.symbol for s in signals)  # each once, none lost

    recs = await rows(fresh_pool, "SELECT event_id, status, digest_id FROM broadcasts WHERE channel = 'telegram' "
                      "AND event_type = 'signal'")  # fmt: skip
    assert sorted(r[0] for r in recs) == sorted(e.id for e in envs)  # one record per signal
    statuses = {r[1] for r in recs}
    assert statuses <= {"sent", "digested"} and "digested" in statuses
    digests = await rows(fresh_pool, "SELECT broadcast_id, text, provider_message_id FROM broadcasts "
                         "WHERE event_type = 'digest' AND status = 'sent'")  # fmt: skip
    assert {r[2] for r in recs if r[1] == "digested"} == {d[0] for d in digests}
    assert all(re.search(r"<b>\d+ updates</b> \(\d+ signals\)", d[1]) for d in digests)
    assert all(len(c.params["text"]) <= 4096 for c in sent)


async def _all_final(pool: Any) -> bool:
    return await final_count(pool) == FLOOD


async def test_429_is_waited_out_5xx_retried_and_a_401_recorded_once(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, telegram: FakeTelegram
) -> None:
    telegram.faults.extend([
        Fault(429, retry_after(2)),
        Fault(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
        Fault(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
    ])  # fmt: skip
    svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(telegram))
    first, second = signal("BTCUSDT"), signal("ETHUSDT")
    async with running(svc):
        env = await bbus.publish(STREAM_SIGNALS, first)
        await aeventually(lambda: _statuses(fresh_pool, env.id, {"failed"}), timeout=30)
        env2 = await bbus.publish(STREAM_SIGNALS, second)
        await aeventually(lambda: _statuses(fresh_pool, env2.id, {"skipped"}), timeout=30)

    calls = telegram.sent(CHANNEL)
    assert len(calls) == 3  # 429, 500, 401 — and nothing after the permanent error
    assert calls[1].at - calls[0].at >= 2.0  # waited as long as Telegram asked
    recs = await rows(fresh_pool, "SELECT status, error, attempts FROM broadcasts WHERE event_id = %s "
                      "ORDER BY time", env.id)  # fmt: skip
    assert [r[0] for r in recs] == ["rate_limited", "failed"]
    assert "retry" in recs[0][1].lower()
    assert "Unauthorized" in recs[1][1] and recs[1][2] == 3
    later = await rows(
        fresh_pool, "SELECT status, error FROM broadcasts WHERE event_id = %s", env2.id
    )
    assert later == [("skipped", later[0][1])] and "channel down" in later[0][1]
    assert await fresh_redis.get(down_key(fresh.settings.bus_namespace, "telegram")) is not None
    journal = await fresh_redis.xrange(f"{fresh.settings.bus_namespace}:stream:{AGENT_LOG_STREAM}")
    downs = [f for _, f in journal if b"broadcast.channel_down" in f[b"e"]]
    assert len(downs) == 1  # alerted once


async def _statuses(pool: Any, event_id: Any, wanted: set[str]) -> bool:
    got = {
        r[0]
        for r in await rows(pool, "SELECT status FROM broadcasts WHERE event_id = %s", event_id)
    }
    return wanted <= got


async def test_twilio_and_x_faults_map_to_wait_retry_and_permanent(
    fresh: Sandbox, fresh_pool: Any, fresh_redis: Any, bbus: Bus, twilio: Any, xfake: Any
) -> None:
    from pydantic import SecretStr

    from tests.broadcaster.conftest import TWILIO_SID, TWILIO_TOKEN

    twilio.faults.extend([
        Fault(429, {"code": 20429, "message": "Too Many Requests", "status": 429},
              headers={"Retry-After": "1"}),
        Fault(503, {"code": 20503, "message": "Service Unavailable", "status": 503}),
    ])  # fmt: skip
    xfake.faults.append(
        Fault(401, {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"})
    )
    svc = make_broadcaster(
        fresh, fresh_pool, fresh_redis,
        twilio_account_sid=TWILIO_SID, twilio_auth_token=SecretStr(TWILIO_TOKEN),
        twilio_phone="+15550001111", sms_admin_phone="+15552223333", twilio_api_base_url=twilio.url,
        x_api_key=SecretStr("k"), x_api_secret=SecretStr("s"), x_access_token=SecretStr("t"),
        x_access_secret=SecretStr("ts"), x_api_base_url=xfake.url, broadcast_sms_rate="10/1",
    )  # fmt: skip
    async with running(svc):
        env = await bbus.publish(STREAM_SIGNALS, signal("BTCUSDT", score=99.0))
        await aeventually(lambda: _statuses(fresh_pool, env.id, {"sent", "failed"}), timeout=30)

    assert len(twilio.calls) == 3 and twilio.calls[1].at - twilio.calls[0].at >= 1.0
    sms = await rows(
        fresh_pool, "SELECT status, attempts FROM broadcasts WHERE channel = 'sms' ORDER BY time"
    )
    assert sms == [("rate_limited", 1), ("sent", 3)]
    x = await rows(fresh_pool, "SELECT status, error FROM broadcasts WHERE channel = 'x'")
    assert len(x) == 1 and x[0][0] == "failed" and x[0][1].startswith("permanent: 401")
    assert len(xfake.calls) == 1  # not retried
    assert await fresh_redis.get(down_key(fresh.settings.bus_namespace, "x")) is not None
    assert await fresh_redis.get(down_key(fresh.settings.bus_namespace, "sms")) is None
