"""`quant up` with the Polymarket vertical on the simulator: the collector fills the poly
tables, the scanner's top smart wallets are mostly the planted informed ones (lucky gamblers
below), a planted group is found as a sync cluster, signals fire with ≥ 5 criteria, and a
planted perps spike on the linked coin makes a hybrid signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from quantcore.db import conninfo
from tests.conftest import eventually
from tests.e2e.harness import running_fleet

pytestmark = pytest.mark.e2e
ENV = {
    "POLY_COLLECT_INTERVAL_S": "5",
    "POLY_SCAN_INTERVAL_S": "10",
    "POLY_WALLET_SYNC_BATCH": "500",
    "POLY_HYBRID_WINDOW_MIN": "120",
}
LATEST = "(SELECT max(time) FROM poly_wallet_scores)"


def test_quant_up_hunts_wallets_clusters_signals_and_hybrids(box: Any, tmp_path: Path) -> None:
    with running_fleet(
        box, ["simulator", "poly_collector", "poly_scanner"], tmp_path / "fleet.log", env=ENV
    ) as fleet:
        # the perps side: a planted OI spike on BTC (the coin of a linked market)
        with psycopg.connect(conninfo(box.settings), autocommit=True) as conn:
            conn.execute(
                """INSERT INTO oi_volume_spikes (time, symbol, mode, is_oi_spike, scanner, scanner_version)
                   VALUES (now(), 'BTCUSDT', 'fixed', true, 'spike_scanner', 'planted')"""
            )

        def up() -> bool:
            try:
                return fleet.sim("GET", "/sim/poly/truth").status_code == 200
            except httpx.TransportError:
                return False

        eventually(up, timeout=60, interval=1)
        truth = fleet.sim("GET", "/sim/poly/truth").json()
        kinds: dict[str, str] = truth["kinds"]
        wallets = len(kinds)

        def synced() -> bool:
            found, done = fleet.sql("SELECT count(*), count(history_synced_at) FROM poly_wallets")[
                0
            ]
            return found >= 0.9 * wallets and done == found

        # every candidate's history is in, then a whole scan must start after that moment
        eventually(synced, timeout=240, interval=2)
        seen = fleet.scalar("SELECT now()")
        eventually(
            lambda: fleet.scalar(f"SELECT {LATEST} > %s", seen) is True, timeout=120, interval=1
        )
        eventually(
            lambda: fleet.scalar("SELECT count(*) FROM hybrid_signals") > 0, timeout=120, interval=2
        )

        assert (
            fleet.scalar("SELECT count(*) FROM poly_markets")
            == fleet.scalar("SELECT count(*) FROM poly_markets WHERE source = 'sim'")
            > 0
        )
        assert fleet.scalar("SELECT count(*) FROM poly_trades") > 0
        top = [r[0] for r in fleet.sql(
            f"SELECT wallet FROM poly_wallet_scores WHERE time = {LATEST} AND is_smart ORDER BY score DESC LIMIT 10"
        )]  # fmt: skip
        assert len(top) == 10 and sum(kinds[w] == "informed" for w in top) >= 8, [
            kinds[w] for w in top
        ]
        scores = dict(
            fleet.sql(f"SELECT wallet, score FROM poly_wallet_scores WHERE time = {LATEST}")
        )
        tenth = min(scores[w] for w in top)
        assert all(scores[w] < tenth for w, k in kinds.items() if k == "lucky" and w in scores)
        clusters = [set(r[0]) for r in fleet.sql("SELECT members FROM poly_clusters")]
        planted = [set(c) for c in truth["clusters"]]
        assert any(c <= g for c in clusters for g in planted)
        assert fleet.scalar("SELECT min(criteria_met) FROM poly_signals") >= 5
        assert (
            fleet.scalar(
                "SELECT count(*) FROM hybrid_signals WHERE symbol = 'BTCUSDT' AND 'oi_spike' = ANY(reasons)"
            )
            > 0
        )
        assert (
            fleet.scalar(
                "SELECT count(*) FROM scanners WHERE name = 'poly_scanner' AND vertical = 'poly'"
            )
            >= 1
        )
