"""`quant migrate`: ordered, once, checksummed, concurrent-safe, and guarded for plain PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quantcore.db import conninfo
from quantcore.migrations import MigrationError, discover, migrate
from quantcore.testing import Infra, sandbox

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "db" / "migrations"


def _ledger(settings: Any) -> list[tuple[int, str]]:
    with psycopg.connect(conninfo(settings)) as conn:
        return conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_second_run_applies_nothing(quant: Any, settings: Any) -> None:
    # the session sandbox is already migrated: the CLI must find nothing to do
    result = quant("migrate")
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s); up to date" in result.stdout
    assert [name for _, name in _ledger(settings)] == [m.name for m in discover(MIGRATIONS)]


def test_concurrent_runs_apply_each_migration_once(infra: Infra) -> None:
    with sandbox(infra, "mig", run_migrations=False) as sb:
        env = {**__import__("os").environ, **sb.env}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "quantcore.cli", "migrate"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outs
        applied_counts = sorted(int(o[0].split("applied ")[1].split(" ")[0]) for o in outs)
        total = len(discover(MIGRATIONS))
        assert applied_counts == [
            0,
            0,
            total,
        ]  # one runner did it all, the others waited, then found nothing
        ledger = _ledger(sb.settings)
        assert len(ledger) == total
        assert len({v for v, _ in ledger}) == total


def test_edited_applied_migration_is_refused(infra: Infra, tmp_path: Path, quant: Any) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    with sandbox(infra, "edit", run_migrations=False) as sb:
        migrate(sb.settings, folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- a sneaky edit\n")
        with pytest.raises(
            MigrationError, match=rf"{re.escape(first.name)} was edited after it was applied"
        ):
            migrate(sb.settings, folder)
        result = quant("migrate", env={**sb.env, "MIGRATIONS_DIR": str(folder)})
        assert result.returncode == 1
        assert f"{first.name} was edited after it was applied" in result.stderr


def test_failed_migration_rolls_back_and_is_not_recorded(infra: Infra, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n"
    )
    with sandbox(infra, "broken", run_migrations=False) as sb:
        with pytest.raises(MigrationError, match=r"9999_broken\.sql failed and was rolled back"):
            migrate(sb.settings, folder)
        with psycopg.connect(conninfo(sb.settings)) as conn:
            assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert 9999 not in {v for v, _ in _ledger(sb.settings)}


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_lower_snake\.sql"):
        discover(tmp_path)


def test_timescale_statements_are_guarded_on_plain_postgres(settings: Any) -> None:
    with psycopg.connect(conninfo(settings)) as conn:
        has_ts = conn.execute("SELECT ws_timescale_enabled()").fetchone()
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert has_ts == (False,)  # our test servers are plain PostgreSQL
    expected = {
        "ohlcv",
        "market_snapshots",
        "liquidation_levels",
        "liquidation_events",
        "liquidation_clusters",
        "coin_thresholds",
        "coin_liquidation_patterns",
        "oi_volume_spikes",
        "fast_price_movers",
        "coin_rankings",
        "signals",
        "orders",
        "trades",
        "position_monitor_logs",
        "agent_logs",
        "equity_snapshots",
        "broadcasts",
        "scanners",
        "service_heartbeats",
        "schema_migrations",
    }
    assert expected <= tables, expected - tables
