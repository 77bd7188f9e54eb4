"""The key-free heatmap estimate in the fleet (issue 14 acceptance): the liquidation collector
with HEATMAP_SOURCE=model and no CoinGlass key, fed only by the simulator's public
Bybit-shaped endpoints (klines, open interest), writes levels for every coin × 9 timeframes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quantcore.model.market import TIMEFRAMES
from tests.conftest import eventually
from tests.e2e.harness import running_fleet

pytestmark = pytest.mark.e2e
COINS = 6


def test_model_source_fills_every_coin_and_timeframe_without_a_key(
    box: Any, tmp_path: Path
) -> None:
    env = {
        "SIM_COINS": str(COINS),
        "SIM_HISTORY_DAYS": "0.5",
        "HEATMAP_SOURCE": "model",
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
