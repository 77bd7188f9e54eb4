"""A real service end to end: `quant run journal` consumes the bus, writes rows, heartbeats,
answers `quant health`, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import sys
from typing import Any

import psycopg

from quantcore.bus import Bus
from quantcore.db import conninfo
from quantcore.model.events import AgentLogRecorded
from quantcore.service import AGENT_LOG_STREAM
from tests.conftest import aeventually, eventually


def _count(settings: Any, sql: str, *params: Any) -> int:
    with psycopg.connect(conninfo(settings)) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


async def test_journal_service_lifecycle(bus: Bus, settings: Any, spawn: Any, quant: Any) -> None:
    secret = "tg-token-SHOULD-NEVER-APPEAR-123"
    proc = spawn(
        sys.executable,
        "-m",
        "quantcore.cli",
        "run",
        "journal",
        env={
            "TELEGRAM_BOT_TOKEN": secret,
            "LOG_LEVEL": "DEBUG",
            "HEARTBEAT_INTERVAL_S": "0.5",
            "SERVICE_INSTANCE": "journal-under-test",
        },
    )
    await aeventually(
        lambda: (
            quant("health", "journal", env={"SERVICE_INSTANCE": "journal-under-test"}).returncode
            == 0
        ),
        timeout=60,
        interval=0.3,
    )
    envs = [
        await bus.publish(
            AGENT_LOG_STREAM,
            AgentLogRecorded(
                agent="tests",
                event_type="test.journal",
                message=f"hello {i} {secret}",
                detail={"i": i},
            ),
            correlation_id=f"cid-{i}",
        )
        for i in range(25)
    ]
    await bus.publish(
        AGENT_LOG_STREAM, AgentLogRecorded(agent="tests", event_type="test.journal", message="dup")
    )
    eventually(
        lambda: (
            _count(settings, "SELECT count(*) FROM agent_logs WHERE event_type = 'test.journal'")
            == 26
        )
    )
    assert (
        _count(
            settings,
            "SELECT count(*) FROM agent_logs WHERE correlation_id = 'cid-3' AND service = 'tests'",
        )
        == 1
    )
    assert _count(settings, "SELECT count(*) FROM agent_logs WHERE event_id = %s", envs[0].id) == 1
    # its own lifecycle goes through the same path
    eventually(
        lambda: (
            _count(
                settings,
                "SELECT count(*) FROM agent_logs WHERE event_type = 'service.started' "
                "AND instance = 'journal-under-test'",
            )
            == 1
        )
    )
    eventually(
        lambda: (
            _count(
                settings,
                "SELECT count(*) FROM service_heartbeats WHERE service = 'journal' "
                "AND instance = 'journal-under-test' AND status = 'ok'",
            )
            == 1
        )
    )

    status = quant("status", "--json")
    assert status.returncode == 0
    assert '"journal-under-test"' in status.stdout

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert (
        _count(
            settings,
            "SELECT count(*) FROM service_heartbeats WHERE instance = 'journal-under-test' "
            "AND status = 'stopped'",
        )
        == 1
    )
    assert (
        quant("health", "journal", env={"SERVICE_INSTANCE": "journal-under-test"}).returncode == 1
    )
    assert secret not in out  # not even from the service's own logs
    for line in out.strip().splitlines():
        assert line.startswith("{"), f"not a JSON log line: {line}"
    assert '"service": "journal"' in out
    assert '"instance": "journal-under-test"' in out


def test_service_with_bad_setting_exits_with_named_variable(quant: Any) -> None:
    result = quant("run", "journal", env={"REDIS_PORT": "sixty"})
    assert result.returncode == 2
    assert "REDIS_PORT" in result.stderr
    assert "sixty" in result.stderr
    result = quant(
        "run", "journal", env={"TRADING_MODE": "live", "BYBIT_API_KEY": "", "BYBIT_API_SECRET": ""}
    )
    assert result.returncode == 2
    assert "BYBIT_API_KEY" in result.stderr


def test_unknown_service_is_a_clear_error(quant: Any) -> None:
    result = quant("run", "nope")
    assert result.returncode == 2
    assert "unknown service 'nope'" in result.stderr
    assert "journal" in result.stderr
