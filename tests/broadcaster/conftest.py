"""Broadcaster tests: a fresh database and Redis namespace per test, the fakes of Telegram,
X, Twilio and SMTP, and a broadcaster built in-process (or run as processes)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr
from redis.asyncio import Redis

from quantcore.bus import Bus
from quantcore.model.events import TradeSignalled
from quantcore.model.plan import MarketView, PriceRange, TradePlan
from quantcore.service import ServiceContext
from quantcore.testing import Sandbox
from quantcore.trading.decision import DecisionSettings, decide
from svc_broadcaster.service import Broadcaster
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.x import FakeX

TOKEN = "123456:TEST-token_ok"
ADMIN_ID = 777001
CHANNEL = "@whales_test"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-test-token"
SMTP_USER = "bot@whalestack.test"
SMTP_PASS = "smtp-test-pass"


@pytest.fixture
async def bbus(fresh: Sandbox, fresh_redis: Redis) -> Bus:
    return Bus(fresh_redis, fresh.settings.bus_namespace, source="tests@broadcaster")


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram({TOKEN})
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def xfake() -> AsyncIterator[FakeX]:
    fake = FakeX()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[FakeSmtp]:
    fake = FakeSmtp(SMTP_USER, SMTP_PASS, tmp_path)
    fake.start()
    yield fake
    fake.stop()


def telegram_settings(fake: FakeTelegram) -> dict[str, Any]:
    return {"telegram_bot_token": SecretStr(TOKEN), "telegram_main_channel": CHANNEL,
            "telegram_admin_id": ADMIN_ID, "telegram_api_base_url": fake.url}  # fmt: skip


def telegram_env(fake: FakeTelegram) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_MAIN_CHANNEL": CHANNEL,
            "TELEGRAM_ADMIN_ID": str(ADMIN_ID), "TELEGRAM_API_BASE_URL": fake.url}  # fmt: skip


# quick retries and claim resolution in tests; no daily digest unless a test asks
FAST: dict[str, Any] = {
    "broadcast_retry_base_s": 0.1, "broadcast_retry_max_s": 1.0, "broadcast_poll_s": 0.1,
    "broadcast_daily_digest_at": "off", "broadcast_send_timeout_s": 5.0,
    "bus_claim_idle_ms": 1000,
}  # fmt: skip


def make_broadcaster(
    box: Sandbox, pool: AsyncConnectionPool, redis: Redis, **overrides: Any
) -> Broadcaster:
    settings = box.settings.model_copy(
        update={"service_instance": f"bcast-{uuid.uuid4().hex[:6]}", **FAST, **overrides}
    )
    bus = Bus(redis, settings.bus_namespace, source="broadcaster@test")
    return Broadcaster(ServiceContext("broadcaster", "broadcaster", Broadcaster.version,
                                      settings, pool, redis, bus))  # fmt: skip


@contextlib.asynccontextmanager
async def running(svc: Broadcaster) -> AsyncIterator[Broadcaster]:
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        yield svc
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def signal(symbol: str = "BTCUSDT", score: float = 80.0, scanner: str = "ranker",
           direction: str = "long", **kw: Any) -> TradeSignalled:  # fmt: skip
    values: dict[str, Any] = {
        "signal_id": uuid.uuid4(), "time": datetime.now(UTC).replace(microsecond=0),
        "cycle_id": "1", "symbol": symbol, "direction": direction, "rank": 1, "score": score,
        "entry_mode": "conservative", "entry_price": 65000.5, "stop_loss": 63000.25,
        "take_profit": 69123.0, "target_price": 69500.0, "target_low": 69000.0,
        "target_high": 70000.0, "price": 64000.0, "imbalance": 0.8, "cluster_size_pct": 150.0,
        "success_rate": 0.7, "oi_change_15m_pct": 4.2, "volume_ratio_5m": 2.1,
        "price_change_5m_pct": 1.3, "scanner": scanner, "scanner_version": "1.0.0+abc",
    }  # fmt: skip
    values.update(kw)
    return TradeSignalled(**values)


def planned(symbol: str = "BTCUSDT", **kw: Any) -> TradeSignalled:
    """A signal as the ranker publishes it: its market view and the decision's plan attached —
    here a scaled ladder of three rungs 69,000 / 68,310 / 67,620, SL 66,943.80, TP 71,142.50.
    The event's flat entry/SL/TP stay the fixture's (65,000.50 / 63,000.25 / 69,123): a
    message showing those would announce a plan nobody trades."""
    view = MarketView(symbol=symbol, direction="long", price=64000.0,
                      target=PriceRange(low=69000.0, high=74000.0), wick_pct=1.0,
                      data_time=datetime.now(UTC))  # fmt: skip
    plan = decide(view, DecisionSettings(entry_mode="scaled", ladder_orders=3))
    assert isinstance(plan, TradePlan), plan
    return signal(symbol, entry_mode="scaled", market=view, plan=plan, **kw)


async def rows(pool: AsyncConnectionPool, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()
