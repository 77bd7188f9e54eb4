"""Every Grafana panel's SQL, expanded as Grafana expands it, run as Grafana's read-only login
against a database seeded by a short run of the fleet: simulator, collectors, scanners, ranker,
journal, and paper trading (autotrader + position monitor) on signals published around the
simulated prices, so trades open, trail and close for real; backtests by `quant backtest`
itself (a run, and a random-search walk-forward with its folds and out-of-sample chain). Broadcast rows and a few error
logs are SYNTHETIC (tests/helpers/trading_seed.py), since no broadcaster runs here.

A panel added with broken SQL, or returning columns its config does not find, fails
`test_panel_query`: the cases are collected from the dashboard JSON files themselves.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from scripts.gen_dashboards import ROLLUP_5M

from quantcore import dashboards as dash
from quantcore.db import conninfo
from quantcore.migrations import READER_ROLE, ensure_reader_login
from quantcore.testing import Infra, Sandbox, sandbox
from tests.conftest import ROOT, eventually
from tests.e2e.harness import running_fleet
from tests.e2e.signals import TIGHT, make_signal, publish, tickers
from tests.helpers.grafana import run_panel_query, variables_for
from tests.helpers.poly_seed import seed_poly_copy
from tests.helpers.trading_seed import seed_paper_trading
from tests.test_rollups import ROLLUPS, rollup_mismatches

pytestmark = pytest.mark.e2e

FOLDER = dash.default_folder()
DASHBOARDS = dash.load_dashboards(FOLDER)
QUERIES = [q for d in DASHBOARDS for q in d.queries]
READER_LOGIN = "grafana_ro"
READER_PASS = "test-only-reader-password"
COINS = 8
FLEET = ["simulator", "market_collector", "liquidation_collector", "spike_scanner",
         "cluster_scanner", "ranker", "journal", "autotrader", "position_monitor"]  # fmt: skip
FAST = {
    **TIGHT,  # paper trading with targets a few tenths of a percent away
    "SIM_COINS": str(COINS),
    "SIM_HISTORY_DAYS": "0.1",
    "BACKFILL_MAX_DAYS": "0.1",
    "SNAPSHOT_INTERVAL_S": "3",
    "SPIKE_SCAN_INTERVAL_S": "5",
    "SPIKE_MOVE_1M_PCT": "0.01",  # relaxed: every scan finds movers and spikes to show
    "SPIKE_MOVE_5M_PCT": "0.02",
    "SPIKE_OI_15M_PCT": "0.001",
    "SPIKE_VOLUME_RATIO": "0.1",
    "CLUSTER_SCAN_INTERVAL_S": "5",
    "PATTERN_UPDATE_INTERVAL_S": "10",
    "RANK_INTERVAL_S": "5",
    "STREAM_STATS_INTERVAL_S": "2",
}
# panels that must show numbers on the seeded database (the main PnL % ones, and the rest of
# what the short run produces)
MUST_HAVE_ROWS = {
    "whalestack-trading": [
        "Account PnL % (since start)", "Account PnL % today", "PnL % in range",
        "Max drawdown % in range", "Closed trades in range: win rate, average win / loss %, R:R",
        "Equity curve (% from start)", "Daily PnL %", "Open positions with unrealised PnL %",
        "Recently closed trades", "PnL % by agent and scanner (closed in range)",
        "Stop moves (trailing ladder)", "Mode", "Recent orders",
        "Total PnL % (perps, poly, combined)", "Total PnL USD (perps, poly, combined)",
    ],
    "whalestack-polymarket": [
        "Copy trading PnL %", "Copy exposure vs cap", "Open copy positions", "Closed copy trades",
        "Followed wallets: copy record",
    ],
    "whalestack-scanners": [
        "Top 10 now", "Rank over time of the current top 10", "Fast price movers",
        "OI / volume spikes", "$coin: price vs target clusters", "$coin: clusters of the latest scan",
        "Scanner leaderboard (closed trades in range)", "Most often in the top 10 (range)",
    ],
    "whalestack-system": [
        "Service heartbeats", "Data freshness per source", "Stream backlogs now",
        "Stream backlog (pending + lag) and dead letters", "Broadcasts per interval",
        "Failed broadcasts", "Recent errors and warnings (agent_logs)",
    ],
    "whalestack-backtests": [
        "Selected run", "Equity of the selected run (% from start)", "Drawdown of the selected run",
        "Trade distribution of the selected run (PnL % per trade)",
        "Trades of the selected run by exit",
        "Per strategy: headline backtest (walk-forward out of sample, else latest run)",
        "Runs (created in range)",
    ],
}  # fmt: skip
# backtests through the real command: a single run, and a walk-forward over a random search
BACKTESTS = [
    ["--strategy", "sma_cross", "--set", "fast=5", "--set", "slow=20", "--coins", "2"],
    ["--strategy", "sma_cross", "--search", "random", "--samples", "3", "--sweep", "fast=3..15",
     "slow=20..60", "--walk-forward", "2", "--coins", "1"],
]  # fmt: skip


def run_backtests(box: Sandbox, report_dir: Path) -> None:
    for args in BACKTESTS:
        p = subprocess.run(
            [sys.executable, "-m", "quantcore.cli", "backtest", "--tape", "sim", "--days", "1",
             "--seed", "9", "--workers", "1", "--report-dir", str(report_dir), *args],
            env={**os.environ, **box.env}, capture_output=True, text=True, timeout=300, cwd=ROOT,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr


@dataclass
class SeededDashboardDb:
    box: Sandbox
    reader_conninfo: str
    seeded_at: datetime
    figures: dict[str, Any]

    def reader(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.reader_conninfo, autocommit=True)


def _count(box: Sandbox, table: str) -> int:
    with psycopg.connect(conninfo(box.settings)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def seeded_dashboard_db(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededDashboardDb]:
    """Market and scanner tables from a short real fleet run; trading tables synthetic (see the
    module docstring); Grafana's login created the way `quant migrate` creates it."""
    with sandbox(infra, "dash") as box:
        started = time.monotonic()
        wanted = ("coin_rankings", "fast_price_movers", "oi_volume_spikes", "liquidation_clusters",
                  "cluster_targets", "stream_stats", "liquidation_refreshes")  # fmt: skip
        log = tmp_path_factory.mktemp("dash") / "fleet.log"
        with running_fleet(box, FLEET, log, env=FAST) as fleet:
            eventually(lambda: all(_count(box, t) > 0 for t in wanted), timeout=120, interval=1)
            # paper trading: tight targets on four coins (they close), wide ones on two (open)
            prices = tickers(fleet)
            coins = [c for c in sorted(prices) if c not in ("BTCUSDT", "ETHUSDT")]
            sigs = [
                make_signal(c, prices[c], "long" if k % 2 else "short")
                for k, c in enumerate(coins[:4])
            ]
            sigs += [make_signal(c, prices[c], "long", width=0.05) for c in coins[4:6]]
            publish(box, sigs)
            eventually(lambda: _count(box, "trades WHERE status = 'closed'") >= 2
                       and _count(box, "position_monitor_logs WHERE action = 'stop_moved'") >= 1
                       and _count(box, "trades WHERE status = 'open'") >= 1
                       and _count(box, "equity_snapshots") >= 4, timeout=150, interval=1)  # fmt: skip
            assert "Traceback" not in fleet.log()
            # Polymarket copy trading by the real copy trader on the fleet's simulator
            poly = asyncio.run(seed_poly_copy(box, fleet.sim_url))
            assert poly.closed >= 1 and poly.open >= 1 and poly.exposure_rows >= 1, poly
        fleet_s = time.monotonic() - started
        now = datetime.now(UTC)
        with psycopg.connect(conninfo(box.settings)) as conn:
            scanner = conn.execute(
                "SELECT name, version FROM scanners WHERE name = 'ranker' LIMIT 1"
            ).fetchone()
        assert scanner

        async def seed() -> Any:
            async with await psycopg.AsyncConnection.connect(conninfo(box.settings)) as conn:
                out = await seed_paper_trading(conn, prices, now, (scanner[0], scanner[1]),
                                               tables=frozenset({"broadcasts", "agent_logs"}))  # fmt: skip
                await conn.commit()
                return out

        seed_result = asyncio.run(seed())
        run_backtests(box, tmp_path_factory.mktemp("reports"))
        trading = {
            t: _count(box, t)
            for t in ("trades", "orders", "position_monitor_logs", "equity_snapshots")
        }
        trading["poly_trades"] = poly.trades
        trading["synthetic_broadcast_rows"] = _count(box, "broadcasts")
        del seed_result
        settings = box.settings.model_copy(
            update={"grafana_ro_user": READER_LOGIN, "grafana_ro_pass": SecretStr(READER_PASS)}
        )
        with psycopg.connect(conninfo(box.settings), autocommit=True) as conn:
            assert ensure_reader_login(conn, settings)
        reader = psycopg.conninfo.make_conninfo(
            conninfo(box.settings), user=READER_LOGIN, password=READER_PASS
        )
        figures = {"fleet_s": round(fleet_s, 1), "trading": trading,
                   **{t: _count(box, t) for t in wanted},
                   **{t: _count(box, t) for t in ("backtest_runs", "backtest_trades",
                                                  "backtest_equity")}}  # fmt: skip
        print(f"\nseeded dashboard db: {figures}")
        yield SeededDashboardDb(box, reader, now, figures)


# --- running a panel the way Grafana does ------------------------------------------------------


def _dashboard(uid: str) -> dash.Dashboard:
    return next(d for d in DASHBOARDS if d.uid == uid)


# 24 h: $__interval 1m, the raw tables; 7 d: $__interval 10m, the 5-minute rollups
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
@pytest.mark.parametrize("pick", ["all", "one"])
@pytest.mark.parametrize("span", sorted(RANGES))
def test_panel_query(
    seeded_dashboard_db: SeededDashboardDb, query: dash.PanelQuery, pick: str, span: str
) -> None:
    rng = dash.TimeRange.last(RANGES[span])
    with seeded_dashboard_db.reader() as conn:
        variables = variables_for(conn, _dashboard(query.dashboard), rng, pick)
        problems, _ = run_panel_query(conn, query, variables, rng)
    assert problems == []


def test_main_panels_return_rows(seeded_dashboard_db: SeededDashboardDb) -> None:
    rng = dash.TimeRange.last(timedelta(hours=24))
    empty: list[str] = []
    with seeded_dashboard_db.reader() as conn:
        for uid, titles in MUST_HAVE_ROWS.items():
            d = _dashboard(uid)
            variables = variables_for(conn, d, rng, "all")
            for title in titles:
                queries = [q for q in d.queries if q.title == title]
                assert queries, f"{uid}: no panel titled {title!r}"
                for q in queries:
                    problems, rows = run_panel_query(conn, q, variables, rng)
                    assert problems == []
                    # a row of only NULLs draws nothing either
                    if not any(v is not None for r in rows for v in r):
                        empty.append(q.name)
    assert empty == []


ROLLUP_QUERIES = [q for q in QUERIES if ROLLUP_5M in q.raw_sql]


def test_rollup_panels_draw_what_the_raw_tables_give(
    seeded_dashboard_db: SeededDashboardDb,
) -> None:
    """Over 7 days ($__interval 10m) the panels read the rollups; the same SQL with the branch
    condition flipped reads the raw tables with the same grouping: the rows must be equal."""
    rng = dash.TimeRange.last(timedelta(days=7))
    interval_ms = round(rng.interval_s() * 1000)
    assert interval_ms % 300000 == 0
    assert {q.title for q in ROLLUP_QUERIES} >= {
        "Stream backlog (pending + lag) and dead letters",
        "Movers and spikes per interval",
    }
    with seeded_dashboard_db.reader() as conn:
        for q in ROLLUP_QUERIES:
            variables = variables_for(conn, _dashboard(q.dashboard), rng, "all")
            sql = dash.render(q.raw_sql, variables, rng, timescaledb=False)
            on_rollup = f"{interval_ms} % 300000 = 0"
            assert sql.count(on_rollup) == sql.count(f"NOT {on_rollup}") * 2 > 0, sql
            from_rollup = sorted(conn.execute(sql).fetchall())
            raw_sql = sql.replace(on_rollup, f"{interval_ms + 1} % 300000 = 0")
            from_raw = sorted(conn.execute(raw_sql).fetchall())
            assert from_rollup, q.name
            assert from_rollup == from_raw, q.name


def test_rollups_equal_their_definition_after_the_fleet_run(
    seeded_dashboard_db: SeededDashboardDb,
) -> None:
    """The journal's samples and the spike scanner's upserts kept the fallback tables equal to
    what each continuous aggregate's SELECT computes from the raw table."""
    with psycopg.connect(conninfo(seeded_dashboard_db.box.settings)) as conn:
        for name in ROLLUPS:
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() != (0,), name
            assert rollup_mismatches(conn, name) == [], name


def test_pnl_panels_agree_with_the_trades(seeded_dashboard_db: SeededDashboardDb) -> None:
    """The win-rate stat counts what the trades table holds (not just 'some rows')."""
    rng = dash.TimeRange.last(timedelta(hours=24))
    d = _dashboard("whalestack-trading")
    q = next(q for q in d.queries if q.title.startswith("Closed trades in range"))
    with seeded_dashboard_db.reader() as conn:
        variables = variables_for(conn, d, rng, "all")
        _, rows = run_panel_query(conn, q, variables, rng)
        expected = conn.execute(
            "SELECT count(*), 100.0 * count(*) FILTER (WHERE pnl_quote > 0) / count(*) FROM trades "
            "WHERE status = 'closed' AND closed_at > %s",
            (rng.start,),
        ).fetchone()
    assert expected is not None and expected[0] > 0
    assert rows[0][0] == expected[0]
    assert float(rows[0][1]) == pytest.approx(float(expected[1]))


def test_backtest_panels_agree_with_the_runs(seeded_dashboard_db: SeededDashboardDb) -> None:
    """The Backtests dashboard draws what `quant backtest` stored: the newest run (the
    walk-forward's out-of-sample chain) is the selected one, its figures, curve end and trade
    count are the run's, and the per-strategy headline is that out-of-sample result."""
    rng = dash.TimeRange.last(timedelta(hours=24))
    d = _dashboard("whalestack-backtests")

    def rows_of(title: str, variables: dict[str, dash.Variable]) -> list[tuple[Any, ...]]:
        (q,) = [q for q in d.queries if q.title == title]
        problems, rows = run_panel_query(conn, q, variables, rng)
        assert problems == []
        return rows

    with seeded_dashboard_db.reader() as conn:
        variables = variables_for(conn, d, rng, "one")
        run = conn.execute(
            "SELECT run_id, pnl_pct, trades, max_drawdown_pct FROM backtest_runs"
            " WHERE phase = 'oos'"
        ).fetchone()
        assert run is not None and variables["run"].value == run[0]
        (stat,) = rows_of("Selected run", variables)
        assert stat[0] == pytest.approx(run[1]) and stat[5] == run[2]
        curve = rows_of("Equity of the selected run (% from start)", variables)
        assert curve[-1][1] == pytest.approx(run[1])
        dd = rows_of("Drawdown of the selected run", variables)
        assert min(v for _, v in dd) == pytest.approx(-run[3])
        assert len(rows_of("Trade distribution of the selected run (PnL % per trade)",
                           variables)) == run[2]  # fmt: skip
        (head,) = rows_of(
            "Per strategy: headline backtest (walk-forward out of sample, else latest run)",
            variables,
        )
        assert head[:4] == ("sma_cross", "1", True, pytest.approx(run[1]))


def test_a_panel_with_broken_sql_fails_the_check(
    seeded_dashboard_db: SeededDashboardDb, tmp_path: Path
) -> None:
    model = _dashboard("whalestack-trading").model
    broken = {**model["panels"][1], "id": 999, "title": "broken"}
    broken["targets"] = [{**broken["targets"][0], "rawSql": "SELECT pnl_pct FROM no_such_table"}]
    wrong = {**model["panels"][1], "id": 998, "title": "wrong columns"}
    wrong["targets"] = [{**wrong["targets"][0], "rawSql": "SELECT 1 AS something_else"}]
    path = tmp_path / "with_broken.json"
    path.write_text(
        __import__("json").dumps({**model, "panels": [*model["panels"], broken, wrong]})
    )
    d = dash.load_dashboard(path)
    rng = dash.TimeRange.last(timedelta(hours=24))
    with seeded_dashboard_db.reader() as conn:
        variables = variables_for(conn, d, rng, "all")
        found = {q.title: run_panel_query(conn, q, variables, rng)[0] for q in d.queries}
    assert "query failed" in found["broken"][0]
    assert found["wrong columns"] == ["missing column 'pnl_pct'"]


# --- the read-only role ------------------------------------------------------------------------

WRITES = [
    "INSERT INTO trades (agent, venue, symbol, direction) VALUES ('x', 'paper', 'XUSDT', 'long')",
    "UPDATE trades SET notes = 'x'",
    "DELETE FROM equity_snapshots",
    "TRUNCATE broadcasts",
    "CREATE TABLE grafana_was_here (x int)",
    "SELECT * FROM schema_migrations",  # not a dashboard table: no SELECT either
]


@pytest.mark.parametrize("statement", WRITES)
def test_reader_cannot_write(seeded_dashboard_db: SeededDashboardDb, statement: str) -> None:
    with seeded_dashboard_db.reader() as conn:
        # read-only transactions are only the login's default; the grants are what stop it
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_reader_holds_select_on_exactly_the_dashboard_tables(
    seeded_dashboard_db: SeededDashboardDb,
) -> None:
    with psycopg.connect(conninfo(seeded_dashboard_db.box.settings)) as conn:
        grants = conn.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s",
            (READER_ROLE,),
        ).fetchall()
        member = conn.execute(
            "SELECT pg_has_role(%s, %s, 'member')", (READER_LOGIN, READER_ROLE)
        ).fetchone()
    assert {p for _, p in grants} == {"SELECT"}
    used: set[str] = set()
    for q in [*QUERIES, *(v for d in DASHBOARDS for v in d.variables)]:
        ctes = set(re.findall(r"\b([a-z_][a-z0-9_]*)\s+AS\s+\(", q.raw_sql))
        tables = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)\b(?!\s*[.(])", q.raw_sql)
        used |= set(tables) - ctes
    assert {t for t, _ in grants} == used
    assert member and member[0]
