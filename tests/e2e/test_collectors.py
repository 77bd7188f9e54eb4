"""Collectors against the simulator, run as local processes with `quant up` (issue 3 acceptance).

What each test prints (pytest -s) are the figures for the closing note.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from quantcore.model.events import STREAM_SNAPSHOTS, Envelope, MarketSnapshotted
from quantcore.model.market import TIMEFRAMES
from tests.conftest import eventually
from tests.e2e.harness import running_fleet

pytestmark = pytest.mark.e2e
HEATMAP_PATH = "/api/futures/liquidation/aggregated-heatmap/model2"
COINS = 8
FAST = {
    "SIM_COINS": str(COINS),
    "SIM_HISTORY_DAYS": "0.1",  # 144 minutes of 1-min history at start
    "BACKFILL_MAX_DAYS": "0.1",
    "SNAPSHOT_INTERVAL_S": "5",
    "GAP_REPAIR_INTERVAL_S": "10",
}


def _coverage(fleet: Any) -> dict[str, Any]:
    return {
        "snapshot_coins": fleet.scalar("SELECT count(DISTINCT symbol) FROM market_snapshots"),
        "ohlcv_coins": fleet.scalar("SELECT count(DISTINCT symbol) FROM ohlcv"),
        "ohlcv_rows": fleet.scalar("SELECT count(*) FROM ohlcv"),
        "level_pairs": fleet.scalar(
            "SELECT count(*) FROM (SELECT DISTINCT symbol, timeframe FROM liquidation_levels) x"
        ),
        "level_rows": fleet.scalar("SELECT count(*) FROM liquidation_levels"),
        "fresh_pairs": fleet.scalar(
            "SELECT count(*) FROM liquidation_refreshes WHERE refreshed_at > now() - interval '2 minutes'"
        ),
    }


def test_quant_up_fills_every_table_for_every_coin_within_one_cycle(
    box: Any, tmp_path: Path
) -> None:
    interval = 30
    env = {**FAST, "HEATMAP_REFRESH_INTERVAL_S": str(interval)}
    services = ["simulator", "market_collector", "liquidation_collector", "journal"]
    with running_fleet(box, services, tmp_path / "fleet.log", env=env) as fleet:
        started = time.monotonic()

        def filled() -> bool:
            c = _coverage(fleet)
            return (
                c["snapshot_coins"] == COINS and c["ohlcv_coins"] == COINS
                and c["level_pairs"] == COINS * len(TIMEFRAMES) and c["fresh_pairs"] == COINS * len(TIMEFRAMES)
            )  # fmt: skip

        eventually(filled, timeout=interval + 60, interval=1)
        took = time.monotonic() - started
        cov = _coverage(fleet)
        per_coin = fleet.sql("SELECT symbol, count(*) FROM ohlcv GROUP BY symbol ORDER BY symbol")
        print(f"\nfilled in {took:.1f}s: {cov}; ohlcv per coin: {dict(per_coin)}")
        assert min(n for _, n in per_coin) >= 100  # the gap repair loaded the simulator's history
        # freshness is queryable per coin x timeframe
        stale = fleet.scalar(
            "SELECT count(*) FROM liquidation_refreshes WHERE refreshed_at < now() - make_interval(secs => %s)",
            interval * 2,
        )
        assert stale == 0
        # snapshots carry real values, not zeros
        assert (
            fleet.scalar(
                "SELECT count(*) FROM market_snapshots WHERE price <= 0 OR open_interest_value <= 0"
            )
            == 0
        )
        assert "Traceback" not in fleet.log()


def _wait_for_cycle_boundary(interval: int, before_s: float) -> float:
    """Sleep until `before_s` seconds before the next cycle starts; returns that cycle's start."""
    nxt = (int(time.time() // interval) + 1) * interval
    if nxt - time.time() < before_s + 0.5:
        nxt += interval
    time.sleep(max(nxt - before_s - time.time(), 0))
    return float(nxt)


def _snapshots_published(box: Any) -> Counter[tuple[str, str]]:
    """(symbol, minute) → how many times it was published on the snapshots stream."""
    client = Redis.from_url(box.settings.redis_url())
    try:
        entries = client.xrange(f"{box.settings.bus_namespace}:stream:{STREAM_SNAPSHOTS}")
    finally:
        client.close()
    seen: Counter[tuple[str, str]] = Counter()
    for _, fields in entries:
        event = MarketSnapshotted.model_validate(Envelope.model_validate_json(fields[b"e"]).payload)
        seen.update((s, event.time.isoformat()) for s in event.symbols)
    return seen


def _heatmap_requests(fleet: Any) -> dict[str, int]:
    return dict(fleet.sim("GET", "/sim/stats").json()["by_path"].get(HEATMAP_PATH, {}))


def test_two_replicas_fetch_each_coin_once_per_cycle_and_survive_a_kill(
    box: Any, tmp_path: Path
) -> None:
    interval = 20
    env = {**FAST, "HEATMAP_REFRESH_INTERVAL_S": str(interval)}
    services = ["simulator", "liquidation_collector"]
    with running_fleet(box, services, tmp_path / "fleet.log", scale={"liquidation_collector": 2},
                       env=env, restart=False) as fleet:  # fmt: skip
        eventually(lambda: len(fleet.pids("liquidation_collector")) == 2, timeout=30)
        eventually(
            lambda: fleet.scalar("SELECT count(*) FROM service_heartbeats WHERE service = 'liquidation_collector' "
                                 "AND status = 'ok'") == 2, timeout=60)  # fmt: skip
        coins = fleet.sim("GET", "/sim/state").json()["symbols"]
        bases = sorted(s.removesuffix("USDT") for s in coins)

        def one_cycle() -> dict[str, int]:
            start = _wait_for_cycle_boundary(interval, before_s=2)
            fleet.sim("POST", "/sim/stats/reset")
            time.sleep(max(start + interval - 2 - time.time(), 0))
            return _heatmap_requests(fleet)

        counts = one_cycle()
        print(f"\ntwo replicas, one cycle: heatmap requests per coin {counts}")
        assert counts == {
            b: len(TIMEFRAMES) for b in bases
        }  # each coin once: 9 timeframes, no more
        split = fleet.sql(
            "SELECT agent, count(DISTINCT symbol) FROM liquidation_refreshes GROUP BY agent"
        )
        assert len(split) == 2  # both replicas did part of the work

        victim = fleet.pids("liquidation_collector")[2]
        os.kill(victim, signal.SIGKILL)
        counts = one_cycle()
        print(f"after SIGKILL of replica 2: heatmap requests per coin {counts}")
        assert counts == {b: len(TIMEFRAMES) for b in bases}  # the survivor took every coin, once


def test_collectors_recover_from_faults_without_duplicates_and_repair_the_gap(
    box: Any, tmp_path: Path
) -> None:
    interval = 20
    env = {**FAST, "HEATMAP_REFRESH_INTERVAL_S": str(interval)}
    services = ["simulator", "market_collector", "liquidation_collector"]
    with running_fleet(box, services, tmp_path / "fleet.log", env=env) as fleet:
        eventually(
            lambda: _coverage(fleet)["fresh_pairs"] == COINS * len(TIMEFRAMES),
            timeout=90,
            interval=1,
        )
        fault_start = time.time()
        fleet.sim("POST", "/sim/faults", content="http_429=0.3,http_5xx=0.3,ws_drop_per_min=20")
        fleet.sim("POST", "/sim/ws/drop")
        time.sleep(interval + 5)  # a whole refresh cycle under faults
        fleet.sim("POST", "/sim/faults", content="")
        injected = fleet.sim("GET", "/sim/stats").json()["faults_injected"]
        fault_end = time.time()
        print(f"\nfaults injected for {fault_end - fault_start:.0f}s: {injected}")
        assert sum(injected.values()) > 0

        # every coin x timeframe refreshed after the faults stopped: recovered on their own
        eventually(
            lambda: fleet.scalar(
                "SELECT count(*) FROM liquidation_refreshes WHERE refreshed_at > to_timestamp(%s)", fault_end
            ) == COINS * len(TIMEFRAMES),
            timeout=interval * 2 + 30, interval=1,
        )  # fmt: skip

        # no gap in the 1-min candles across the fault window, once repaired
        lo = datetime.fromtimestamp(fault_start - 300, UTC).replace(second=0, microsecond=0)

        def gaps() -> dict[str, int]:
            hi = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
            expected = int((hi - lo).total_seconds() // 60)
            rows = dict(fleet.sql(
                "SELECT symbol, count(*) FROM ohlcv WHERE interval = '1m' AND time >= %s AND time < %s "
                "GROUP BY symbol", lo, hi,
            ))  # fmt: skip
            return {s: expected - rows.get(s, 0) for s in coins if rows.get(s, 0) != expected}

        coins = [r[0] for r in fleet.sql("SELECT DISTINCT symbol FROM market_snapshots")]
        assert len(coins) == COINS
        eventually(lambda: not gaps(), timeout=90, interval=2)
        print(f"no missing 1-min candle from {lo:%H:%M} on, for all {COINS} coins")
        # counted on the stream, not in market_snapshots (whose key forbids duplicates): every
        # coin's minute was published once, faults and retries notwithstanding
        published = _snapshots_published(box)
        dupes = {k: n for k, n in published.items() if n > 1}
        assert published and not dupes, list(dupes.items())[:5]
        assert fleet.proc.poll() is None  # the fleet is still up
        restarts = [line for line in fleet.log().splitlines() if "restarting in" in line]
        assert not restarts, restarts[:3]  # nobody crashed: they recovered in place
