"""The key-free heatmap estimate in the fleet (issue 14 acceptance): a DATA_SOURCE=bybit run
with no CoinGlass key (HEATMAP_SOURCE left at auto), its Bybit REST endpoint pointed at the
simulator: the liquidation collector, fed only by the public Bybit-shaped endpoints (klines,
open interest), writes the model's levels for every coin × 9 timeframes; the cluster scanner
and the ranker downstream stamp their clusters, rankings and signals heatmap_source=model. The
market collector fills the model's other public inputs (the trade stream as taker flow per
minute, the account ratio, the risk-limit tiers) from the simulator's Bybit-shaped endpoints,
and the estimate's intervals carry them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
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
        "BYBIT_WS_PUBLIC": f"ws://127.0.0.1:{port}/v5/public/linear",
        "HEATMAP_REFRESH_INTERVAL_S": "30",
        "OI_BACKFILL_HOURS": "1",
        "BACKFILL_MAX_DAYS": "0.05",
        "CLUSTER_SCAN_INTERVAL_S": "10",
        "RANK_INTERVAL_S": "10",
        # relaxed trigger and plan (as tests/e2e/test_scanners.py): this run proves which
        # source a signal carries, not the trigger
        "TRIGGER_MODE": "fixed",
        "TRIGGER_OI_PCT": "-100",
        "TRIGGER_VOLUME_RATIO": "0",
        "TRIGGER_MOVE_PCT": "0",
        "MIN_REWARD_RISK": "0",
        # the live hit rate, test-sized: heatmaps of a minute ago against the minute since
        "HEATMAP_EVAL_INTERVAL_S": "20",
        "HEATMAP_EVAL_WINDOW_MIN": "1",
    }
    services = [
        "simulator",
        "market_collector",
        "liquidation_collector",
        "cluster_scanner",
        "ranker",
    ]
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

        # downstream, every cluster, ranking and signal says which heatmap fed it: the model
        def sources(table: str) -> list[tuple[Any, ...]]:
            return fleet.sql(f"SELECT heatmap_source, count(*) FROM {table} GROUP BY 1")

        eventually(lambda: sources("coin_rankings"), timeout=180, interval=1)
        # test-sized: a hunt planted on each coin of the first top 3 (the scenario hook, as in
        # tests/e2e/test_trigger_to_trade.py) moves price the bias way, so a signal comes soon
        top = fleet.sql(
            "SELECT symbol FROM coin_rankings WHERE rank <= 3"
            " AND time = (SELECT max(time) FROM coin_rankings) ORDER BY rank"
        )
        for (symbol,) in top:
            httpx.post(
                f"http://127.0.0.1:{port}/sim/hunt", json={"symbol": symbol, "push_in_s": 30}
            )
        signal = eventually(
            lambda: fleet.sql(
                "SELECT heatmap_source, inputs->'event'->>'heatmap_source' FROM signals LIMIT 1"
            ),
            timeout=420, interval=2,
        )  # fmt: skip
        for table in ("liquidation_clusters", "coin_rankings", "signals"):
            found = sources(table)
            print(f"{table} per heatmap_source: {found}")
            assert [s for s, _ in found] == ["model"], (table, found)
        assert signal[0] == ("model", "model")  # the row and the typed event it published

        # the live hit rate: the model's heatmaps scored against the recorded liquidations
        rates = eventually(
            lambda: fleet.sql(
                "SELECT heatmap_source, coins, clusters, reached, precision_pct, recall_pct"
                " FROM heatmap_hit_rates ORDER BY time"
            ),
            timeout=120, interval=2,
        )  # fmt: skip
        print(f"heatmap_hit_rates: {rates}")
        assert {r[0] for r in rates} == {"model"} and all(r[1] == COINS for r in rates)

        # the collected inputs: tiers of every coin, the account ratio backfilled over the
        # simulator's history, the trade stream summed per minute, all folded into the intervals
        def collected() -> tuple[int, int, int]:
            return (
                int(fleet.scalar("SELECT count(DISTINCT symbol) FROM risk_limit_tiers WHERE tier = 1")),
                int(fleet.scalar("SELECT count(DISTINCT symbol) FROM account_ratios WHERE period_s = 300")),
                int(fleet.scalar("SELECT count(DISTINCT symbol) FROM taker_flow WHERE buy_qty + sell_qty > 0")),
            )  # fmt: skip

        eventually(lambda: collected() == (COINS, COINS, COINS), timeout=120, interval=1)
        mmr = fleet.scalar(
            "SELECT min(maintenance_margin_rate) FROM risk_limit_tiers WHERE tier = 1"
        )
        assert mmr == 0.005  # the simulator's first tier, as its liquidations use

        def folded() -> list[tuple[Any, ...]]:
            return fleet.sql(
                "SELECT count(DISTINCT symbol) FILTER (WHERE long_ratio IS NOT NULL),"
                " count(DISTINCT symbol) FILTER (WHERE taker_buy + taker_sell > 0)"
                " FROM heatmap_inputs WHERE interval_s = 300"
            )

        # the first finished 5-minute interval with streamed trades takes up to 5 minutes
        eventually(lambda: folded()[0] == (COINS, COINS), timeout=480, interval=2)
        print(
            f"collected inputs (tiers, ratios, taker flow coins): {collected()}; folded {folded()}"
        )
        assert "Traceback" not in fleet.log()
        assert "heatmap estimate from partial inputs" in fleet.log()
        # the backfill command: every coin already synced, so it resumes with nothing to redo
        done = quant("backfill", "--heatmap-inputs", env=env)
        print(done.stdout, done.stderr[-500:])
        assert done.returncode == 0, done.stderr
        assert f"for {COINS} coins" in done.stdout
