"""The strategy runner as a process: plug-ins picked by name run on what the collector stores
from the simulator and publish signals tagged with their name and version; an unknown name or a
bad setting stops it at start with exit code 2 and the reason."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantcore.backtest.tapes import RawCandles, check_and_shape
from quantcore.model.events import STREAM_SIGNALS, Envelope
from quantcore.strategies.live import strategies_from
from quantcore.testing import Sandbox
from tests.conftest import eventually
from tests.e2e.harness import running_fleet

pytestmark = pytest.mark.e2e

SPEC = "sma_cross(fast=2,slow=3)"  # crosses often: a signal within minutes
ENV = {
    "SIM_COINS": "3", "SIM_HISTORY_DAYS": "0.08", "BACKFILL_MAX_DAYS": "0.08",
    "SIM_SPEED": "6", "STRATEGIES": f"{SPEC},scanner_oi", "STRATEGY_SYMBOLS": "SOLUSDT",
    "STRATEGY_INTERVAL_S": "1", "STRATEGY_WINDOW_MIN": "90",
}  # fmt: skip


def _published(box: Sandbox) -> list[dict[str, Any]]:
    import redis

    client = redis.Redis.from_url(box.settings.redis_url())
    try:
        entries = client.xrange(f"{box.settings.bus_namespace}:stream:{STREAM_SIGNALS}")
    finally:
        client.close()
    envs = [Envelope.model_validate_json(f[b"e"]) for _, f in entries]
    return [e.payload | {"_type": e.type} for e in envs]


def test_runner_on_the_simulator_publishes_signals_tagged_with_name_and_version(
    box: Sandbox, tmp_path: Path
) -> None:
    services = ["simulator", "market_collector", "strategy_runner"]
    with running_fleet(box, services, tmp_path / "fleet.log", env=ENV) as fleet:
        rows = eventually(
            lambda: fleet.sql(
                "SELECT signal_id, time, direction, price, scanner, scanner_version, inputs "
                "FROM signals WHERE scanner = 'sma_cross' ORDER BY time"
            ),
            timeout=240, interval=1,
        )  # fmt: skip
        registered = fleet.sql(
            "SELECT name, version, params FROM scanners WHERE name = 'sma_cross'"
        )
        # scanner_oi runs beside it, picked by name and registered. (Its decisions wait for the
        # OI snapshot stamped at each bar's close; the collector stamps snapshots on the wall
        # clock, which this 6x simulator outruns — at SIM_SPEED 1 and live they keep up.)
        assert fleet.scalar("SELECT count(*) FROM scanners WHERE name = 'scanner_oi'") == 1
        published = eventually(
            lambda: [p for p in _published(box) if p["_type"] == "signal.strategy"]
        )
        candles = fleet.sql(
            "SELECT extract(epoch FROM time)::int8, open, high, low, close, volume FROM ohlcv "
            "WHERE symbol = 'SOLUSDT' AND interval = '1m' ORDER BY time"
        )
    sid, at, direction, price, scanner, version, inputs = rows[0]
    # tagged: the plug-in's name, its version + settings hash as registered
    assert (scanner, len(registered)) == ("sma_cross", 1)
    assert version == registered[0][1] and version.startswith("1+")
    assert registered[0][2]["fast"] == 2 and registered[0][2]["slow"] == 3
    assert inputs["strategy"]["name"] == "sma_cross" and inputs["strategy"]["version"] == "1"
    event = next(p for p in published if p["signal_id"] == str(sid))
    assert (event["strategy"], event["strategy_version"], event["scanner_version"]) == (
        "sma_cross", "1", version,
    )  # fmt: skip
    assert event["symbol"] == "SOLUSDT" and event["direction"] == direction
    # the signal is the plug-in's decision at that bar on the stored candles (the db tape)
    arr = np.array(candles, dtype=np.float64)
    bars = check_and_shape(RawCandles("SOLUSDT", arr[:, 0].astype(np.int64), arr[:, 1:].T.copy()))
    [st] = strategies_from(SPEC)
    k = int(np.flatnonzero(bars.close_s == int(at.timestamp()))[0])
    assert int(st.signals(bars).entry[k]) == (1 if direction == "long" else -1)
    assert float(price) == pytest.approx(float(bars.close[k]))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nope", "unknown strategy 'nope'"),
        ("sma_cross(fast=50,slow=10)", "sma_cross: bad setting(s)"),
        ("scanner_oi(vol_min=0)", "scanner_oi: bad setting(s): vol_min"),
    ],
)
def test_unknown_strategy_or_bad_setting_exits_2_with_the_reason(
    quant: Any, spec: str, says: str
) -> None:
    done: subprocess.CompletedProcess[str] = quant(
        "run", "strategy_runner", env={"STRATEGIES": spec}, timeout=60
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in done.stderr


def test_a_plugin_that_reads_heatmaps_starts(box: Sandbox, spawn: Any) -> None:
    """`STRATEGIES=liquidation_hunter` (it reads heatmap levels) starts and registers the
    plug-in: it used to be refused at start (its live signals on stored heatmaps are shown
    in tests/strategies/test_runner_heatmaps.py)."""
    import sys

    import psycopg

    from quantcore.db import conninfo

    env = {"STRATEGIES": "liquidation_hunter", "STRATEGY_WINDOW_MIN": "1500"}
    proc = spawn(sys.executable, "-m", "quantcore.cli", "run", "strategy_runner", env=env)

    def registered() -> Any:
        with psycopg.connect(conninfo(box.settings)) as conn:
            return conn.execute(
                "SELECT version FROM scanners WHERE name = 'liquidation_hunter'"
            ).fetchone()

    eventually(registered, timeout=90, interval=0.5)
    assert proc.poll() is None, proc.stdout.read()[-2000:] if proc.stdout else ""
