"""`quant up`, the no-Docker way to run the fleet: prefixed output, replicas, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from quantcore.db import conninfo
from tests.conftest import ROOT, eventually


@pytest.mark.e2e
def test_quant_up_runs_replicas_and_stops_cleanly_on_ctrl_c(box: Any, settings: Any) -> None:
    started_at = datetime.now(UTC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantcore.cli", "up", "--only", "journal", "--scale", "journal=2"],
        env={**os.environ, **box.env, "HEARTBEAT_INTERVAL_S": "0.5"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def instances_started() -> int:
        with psycopg.connect(conninfo(settings)) as conn:
            row = conn.execute(
                "SELECT count(DISTINCT instance) FROM agent_logs WHERE event_type = 'service.started' "
                "AND service = 'journal' AND time >= %s",
                (started_at,),
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        eventually(lambda: instances_started() >= 2, timeout=60, interval=0.5)
    finally:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    lines = out.splitlines()
    assert any(line.startswith("journal.1 |") for line in lines)
    assert any(line.startswith("journal.2 |") for line in lines)
    assert "stopping the fleet" in out
    assert "journal.1 | stopped (exit 0)" in out
    assert "journal.2 | stopped (exit 0)" in out
    with psycopg.connect(conninfo(settings)) as conn:
        alive = conn.execute(
            "SELECT count(*) FROM service_heartbeats WHERE service = 'journal' "
            "AND status IN ('starting', 'ok', 'degraded') AND started_at >= %s",
            (started_at,),
        ).fetchone()
    assert alive == (0,)  # every replica recorded its stop


def test_quant_up_rejects_unknown_services(quant: Any) -> None:
    result = quant("up", "--only", "journal,ghost")
    assert result.returncode == 2
    assert "unknown service(s) ghost" in result.stderr
