"""The daily loss guard (quantcore.trading.guard) wired in the autotrader: unrealised losses
count, the fleet-wide kill switch is engaged once, journaled and announced on the risk stream;
the broadcaster's warning to the admin is counted at the fake Telegram server."""

from __future__ import annotations

from decimal import Decimal

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from quantcore.bus import Bus, stream_key
from quantcore.model.events import STREAM_RISK, Envelope, KillSwitchEngaged
from quantcore.model.trading import OrderRequest
from quantcore.service import AGENT_LOG_STREAM, ServiceContext
from quantcore.store.paper_venue import PaperBooks
from quantcore.testing import Sandbox
from quantcore.trading.killswitch import KillSwitch
from quantcore.venues.paper import PaperFees, PaperVenue
from svc_autotrader.service import Autotrader
from tests.trading.conftest import StaticPrices

D = Decimal


async def _envelopes(redis: Redis, ns: str, stream: str) -> list[Envelope]:
    return [
        Envelope.model_validate_json(f[b"e"]) for _, f in await redis.xrange(stream_key(ns, stream))
    ]


def _autotrader(
    box: Sandbox, pool: AsyncConnectionPool, redis: Redis, prices: StaticPrices
) -> Autotrader:
    settings = box.settings.model_copy(update={"service_instance": "autotrader-guard-test",
                                               "daily_loss_limit_pct": 5.0})  # fmt: skip
    bus = Bus(redis, settings.bus_namespace, source="autotrader@test")
    svc = Autotrader(ServiceContext("autotrader", "liquidation_hunter", Autotrader.version,
                                    settings, pool, redis, bus))  # fmt: skip
    svc.venue = PaperVenue(PaperBooks(pool, start_equity=10_000), prices,
                           fees=PaperFees(taker_pct=0.0, maker_pct=0.0, slippage_pct=0.0,
                                          default_leverage=10))  # fmt: skip
    return svc


async def test_an_open_loss_past_the_daily_limit_engages_the_kill_switch_once(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis, prices: StaticPrices
) -> None:
    ns = fresh.settings.bus_namespace
    svc = _autotrader(fresh, fresh_pool, fresh_redis, prices)
    prices.set("SOLUSDT", 100)
    await svc.venue.place_orders([OrderRequest("g1", "SOLUSDT", "buy", "market", D("100"))])
    prices.set("SOLUSDT", 96)  # 100 coins × -4 = -400 USDT open: 4 % of 10,000, under the limit
    assert not await svc.guard_daily_loss()
    assert not (await KillSwitch(fresh_redis, ns).state()).active
    prices.set("SOLUSDT", 94)  # -600 USDT open, nothing closed today: 6 % > 5 %
    assert await svc.guard_daily_loss()
    state = await KillSwitch(fresh_redis, ns).state()
    assert state.active and state.reason is not None and "realised + unrealised" in state.reason
    assert not await svc.guard_daily_loss()  # already engaged: not announced again
    [alert] = await _envelopes(fresh_redis, ns, STREAM_RISK)
    event = KillSwitchEngaged.model_validate(alert.payload)
    assert event.day_pnl == -600 and round(event.day_pnl_pct, 6) == -6 and event.limit_pct == 5
    journal = [e.payload for e in await _envelopes(fresh_redis, ns, AGENT_LOG_STREAM)]
    engaged = [p for p in journal if p["event_type"] == "killswitch.engaged"]
    assert len(engaged) == 1 and engaged[0]["level"] == "critical"


async def test_the_admin_is_warned_once_per_engagement_counted_at_the_fake_telegram(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, fresh_redis: Redis
) -> None:
    from quantcore.bus import Delivery
    from tests.broadcaster.conftest import ADMIN_ID, TOKEN, make_broadcaster, telegram_settings
    from tests.fakes.telegram import FakeTelegram

    fake = FakeTelegram({TOKEN})
    await fake.start()
    try:
        svc = make_broadcaster(fresh, fresh_pool, fresh_redis, **telegram_settings(fake))
        bus = Bus(fresh_redis, fresh.settings.bus_namespace, source="autotrader@test")
        event = KillSwitchEngaged(reason="daily loss limit: lost 6.00 % today", engaged_by="autotrader",
                                  day_pnl=-600, day_pnl_pct=-6, limit_pct=5, start_equity=10_000)  # fmt: skip
        env = await bus.publish(STREAM_RISK, event)
        delivery = Delivery("1-0", env, event, 1)
        await svc.on_risk([delivery])
        await svc.on_risk([delivery])  # redelivered after a crash before the ack
        sent = fake.sent(ADMIN_ID)
        assert len(sent) == 1
        assert "Kill switch engaged" in str(sent[0].params["text"])
        assert fake.sent(svc.ctx.settings.telegram_main_channel) == []  # the admin only
    finally:
        for sender in svc.senders.values():
            await sender.close()
        await fake.stop()
