"""The key-free heatmap estimate in the fleet (issue 14 acceptance): a DATA_SOURCE=bybit run
with no CoinGlass key (HEATMAP_SOURCE left at auto), its Bybit REST endpoint pointed at the
simulator: the liquidation collector, fed only by the public Bybit-shaped endpoints (klines,
open interest), writes the model's levels for every coin × 9 timeframes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantcore.model.market import TIMEFRAMES
from tests.conftest import eventually
from tests.e2e.harness import free_port, running_fleet

pytestmark = pytest.mark.e2e
COINS = 6


def test_model_source_fills_every_coin_and_timeframe_without_a_key(
    box: Any, tmp_path: Path, quant: Any
) -> None:
    port = free_port()
    env = {
        "SIM_COINS": str(COINS),
        "SIM_HISTORY_DAYS": "0.5",
        "SIM_PORT": str(port),
        "DATA_SOURCE": "bybit",  # real-data settings: no CoinGlass key, so auto = the model
        "BYBIT_ENDPOINT_REST": f"http://127.0.0.1:{port}",
        "HEATMAP_REFRESH_INTERVAL_S": "30",
    }
    services = ["simulator", "liquidation_collector"]
    with running_fleet(box, services, tmp_path / "fleet.log", env=env) as fleet:

        def pairs() -> int:
            return int(
                fleet.scalar(
                    "SELECT count(*) FROM (SELECT DISTINCT symbol, timeframe FROM liquidation_levels"
                    " WHERE source = 'estimate' AND value_usd > 0) x"
                )
            )

        eventually(lambda: pairs() == COINS * len(TIMEFRAMES), timeout=120, interval=1)
        # no level at a non-positive price, nothing from another source
        assert fleet.scalar("SELECT count(*) FROM liquidation_levels WHERE price <= 0") == 0
        assert (
            fleet.scalar("SELECT count(*) FROM liquidation_levels WHERE source <> 'estimate'") == 0
        )
        # half a day of history cannot fill a year: every refresh is flagged partial
        assert (
            fleet.scalar(
                "SELECT count(*) FROM liquidation_refreshes WHERE source = 'estimate' AND NOT partial"
            )
            == 0
        )
        inputs = fleet.sql(
            "SELECT interval_s, count(DISTINCT symbol), count(open_interest) FROM heatmap_inputs"
            " GROUP BY interval_s ORDER BY interval_s"
        )
        print(f"\nheatmap_inputs per interval (width, coins, rows with OI): {inputs}")
        assert any(w == 300 and n == COINS and oi > 0 for w, n, oi in inputs)
        assert "Traceback" not in fleet.log()
        assert "heatmap estimate from partial inputs" in fleet.log()
        # the backfill command: every coin already synced, so it resumes with nothing to redo
        done = quant("backfill", "--heatmap-inputs", env=env)
        print(done.stdout, done.stderr[-500:])
        assert done.returncode == 0, done.stderr
        assert f"for {COINS} coins" in done.stdout
