"""No secret leaves the fleet: a run with every channel configured (and failing now and then)
prints no configured secret value in any line and writes none in any row or any Redis key."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
import pytest
from redis.asyncio import Redis

from quantcore.bus import Bus
from quantcore.config import env_name
from quantcore.db import conninfo
from quantcore.model.events import STREAM_SIGNALS
from quantcore.testing import Sandbox
from tests.conftest import aeventually
from tests.e2e.harness import running_fleet
from tests.e2e.signals import TIGHT, make_signal
from tests.fakes.http import Fault
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.e2e

SERVICES = ["simulator", "market_collector", "liquidation_collector", "autotrader",
            "position_monitor", "broadcaster", "journal"]  # fmt: skip


def _rows_as_text(box: Sandbox) -> list[str]:
    """Every row of every table of the fleet's database, as text."""
    out: list[str] = []
    with psycopg.connect(conninfo(box.settings)) as conn:
        tables = conn.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM "
            "information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
            "('pg_catalog', 'information_schema', '_timescaledb_catalog', '_timescaledb_config', "
            "'_timescaledb_internal', 'timescaledb_information')"
        ).fetchall()
        for (table,) in tables:
            out += [r[0] for r in conn.execute(f"SELECT t::text FROM {table} t").fetchall()]
    return out


async def _redis_as_text(redis: Redis, namespace: str) -> list[str]:
    out: list[str] = []
    async for key in redis.scan_iter(match=f"{namespace}:*", count=500):
        kind = (await redis.type(key)).decode()
        if kind == "stream":
            for _, fields in await redis.xrange(key):
                out += [k.decode(errors="replace") + "=" + v.decode(errors="replace")
                        for k, v in fields.items()]  # fmt: skip
        elif kind == "string":
            out.append((await redis.get(key) or b"").decode(errors="replace"))
        elif kind == "hash":
            out += [str(v) for v in (await redis.hgetall(key)).values()]
        elif kind in ("set", "zset", "list"):
            out.append(str(await redis.dump(key)))
        out.append(key.decode(errors="replace"))
    return out


async def test_no_configured_secret_is_printed_or_stored(box: Sandbox, tmp_path: Path) -> None:
    redis = Redis.from_url(box.settings.redis_url())
    tag = uuid.uuid4().hex[:10]
    token = f"424242:SECRET-tg-{tag}"
    secrets = {
        "telegram_bot_token": token,
        "twilio_auth_token": f"SECRET-twilio-{tag}",
        "email_pass": f"SECRET-smtp-{tag}",
        "timescale_db_pass": f"SECRET-db-{tag}",  # trust auth here: configured, never needed
        "timescale_db_app_pass": f"SECRET-db-app-{tag}",  # set on the app login by migrate
        "grafana_ro_pass": f"SECRET-grafana-ro-{tag}",
        "grafana_admin_pass": f"SECRET-grafana-admin-{tag}",
        "coinglass_api_key": f"SECRET-cg-{tag}",
        "binance_api_key": f"SECRET-binance-{tag}",
        "binance_api_secret": f"SECRET-binance-s-{tag}",
    }
    sid = "AC" + tag.ljust(32, "0")
    telegram = FakeTelegram({token})
    twilio = FakeTwilio(sid, secrets["twilio_auth_token"])
    smtp = FakeSmtp("bot@whalestack.test", secrets["email_pass"], tmp_path)
    await telegram.start()
    await twilio.start()
    smtp.start()
    # failures put error texts in logs and rows: the place a token in a URL would leak
    telegram.faults.extend(
        [Fault(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})] * 3
    )
    twilio.faults.extend([Fault(500, {"code": 20500, "message": "Internal", "status": 500})] * 2)
    env = {
        **TIGHT, **{env_name(k): v for k, v in secrets.items()},
        "TELEGRAM_MAIN_CHANNEL": "@whales_secret_test", "TELEGRAM_ADMIN_ID": "777001",
        "TELEGRAM_API_BASE_URL": telegram.url,
        env_name("twilio_account_sid"): sid, "TWILIO_PHONE": "+15550001111",
        "SMS_ADMIN_PHONE": "+15552223333", "TWILIO_API_BASE_URL": twilio.url,
        env_name("email_user"): "bot@whalestack.test", "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(smtp.port), "EMAIL_SMTP_CA_FILE": str(smtp.ca_file),
        "EMAIL_TO": "owner@whalestack.test", "BROADCAST_RETRY_BASE_S": "0.2",
        "BROADCAST_DAILY_DIGEST_AT": "off",
    }  # fmt: skip
    try:
        with running_fleet(box, SERVICES, tmp_path / "fleet.log", env=env) as fleet:

            async def heartbeats() -> bool:
                n = fleet.scalar("SELECT count(DISTINCT service) FROM service_heartbeats "
                                 "WHERE beat_at > now() - interval '10 seconds'")  # fmt: skip
                return (n or 0) >= len(SERVICES)

            await aeventually(heartbeats, timeout=120, interval=1)
            prices = (await asyncio.to_thread(fleet.sim, "GET", "/v5/market/tickers",
                                              params={"category": "linear"})).json()  # fmt: skip
            coins = [(t["symbol"], float(t["lastPrice"])) for t in prices["result"]["list"]][:3]
            bus = Bus(redis, box.settings.bus_namespace, source="ranker@secrets-test")
            await bus.publish_many(
                STREAM_SIGNALS, [make_signal(s, p, "long" if i % 2 else "short")
                                 for i, (s, p) in enumerate(coins)],
            )  # fmt: skip
            await aeventually(lambda: len(telegram.sent()) >= 3 and twilio.named("Messages.create")
                              and smtp.received, timeout=120, interval=0.5)  # fmt: skip
            await asyncio.sleep(3)  # a few more cycles of every service before stopping
        log = fleet.log()
        rows = await asyncio.to_thread(_rows_as_text, box)
        keys = await _redis_as_text(redis, box.settings.bus_namespace)
    finally:
        await redis.aclose()
        await telegram.stop()
        await twilio.stop()
        smtp.stop()
    assert len(log.splitlines()) > 100 and len(rows) > 100 and len(keys) > 10  # not vacuous
    assert any("502" in line or "Bad Gateway" in line for line in log.splitlines() + rows)
    leaks = {
        name: [where for where, text in (("log", log), ("rows", "\n".join(rows)),
                                         ("redis", "\n".join(keys))) if value in text]
        for name, value in secrets.items()
    }  # fmt: skip
    assert not any(leaks.values()), f"secret values found: {leaks}"
    print(f"\nsecrets checked: {len(secrets)} values in {len(log.splitlines())} log lines, "
          f"{len(rows)} rows, {len(keys)} Redis values: none found")  # fmt: skip
