"""A short chaos run in the suite: `scripts/chaos` (every service ×2 on the simulator, random
SIGKILLs, connection kills, Redis restarts, simulator and channel faults, malformed and
oversized entries on every stream) must end with a zero exit and a reconciliation — counted at
the venue's books, at the fake channel servers and on the streams — that finds nothing lost,
nothing doubled and every bad entry dead-lettered.

The chaos phase lasts QUANT_CHAOS_MINUTES (1.5 by default, about 3 minutes in all); the long
run is `./scripts/chaos --minutes 10`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers.redis_server import available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not available(), reason="needs the redis-server binary"),
]


def test_short_chaos_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    minutes = os.environ.get("QUANT_CHAOS_MINUTES", "1.5")
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.chaos", "--minutes", minutes, "--settle", "90",
         "--workdir", str(tmp_path / "work"), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60 * float(minutes) + 600,
    )  # fmt: skip
    tail = done.stdout[-6000:] + done.stderr[-3000:]
    assert out.exists(), tail
    r = json.loads(out.read_text())
    # the chaos happened: every service killed (each replica of the scaled ones), Redis
    # restarted, connections cut, faults on, bad entries on every stream a group reads
    assert (
        set(r["kills_by_service"]) == set(_services()) and min(r["kills_by_service"].values()) >= 2
    ), tail
    assert r["redis_restarts"] >= 2 and r["redis_client_kills"] > 0 and r["pg_backend_kills"] > 0
    assert r["fault_windows"] >= 1 and r["channel_faults"] > 0
    assert {"signals", "positions", "agent_logs", "trade.commands"} <= set(r["injected_streams"])
    # and there was work to lose: signals decided, orders at the venue, messages at the fakes
    assert r["signals_on_stream"] >= 5 and r["decisions"] == r["signals_on_stream"], tail
    assert r["venue_entry_orders"] >= 1, tail
    assert all(c["delivered"] > 0 for c in r["broadcast"]["per_channel"].values()), tail
    # the reconciliation from outside
    assert r["lost_signals"] == 0 and r["phantom_decisions"] == 0, tail
    traded = r["decisions_by_kind"].get("traded", 0)
    assert r["decided_twice"] == 0 and r["decisions_announced"] >= traded, tail
    assert r["duplicate_orders"] == 0 and r["lost_orders"] == 0 and r["overfilled_orders"] == 0
    assert r["broadcast"]["duplicated"] == 0 and r["broadcast"]["lost"] == 0, r["broadcast"]
    assert r["orphans"] == 0 and not r["double_open_trades"], tail
    assert r["dead_lettered"] == r["dead_letters_expected"] and r["injected"] > 0
    assert r["dead_letters_valid"] == 0, r["dead_letter_reasons_valid"]
    assert r["bad_rows"] == {}, r["bad_rows"]
    assert r["lost"] == 0 and r["duplicated"] == 0
    assert done.returncode == 0, tail
    print(f"\nchaos {minutes} min: kills {r['kills']}, redis restarts {r['redis_restarts']}, "
          f"injected {r['injected']}, dead-lettered {r['dead_lettered']}, signals "
          f"{r['signals_on_stream']}, venue orders {r['venue_entry_orders']}, broadcast "
          f"{r['broadcast']['per_channel']}, lost 0, duplicated 0; load {r['load_avg_1m']}")  # fmt: skip


def _services() -> list[str]:
    from quantcore.registry import service_names

    return service_names()
