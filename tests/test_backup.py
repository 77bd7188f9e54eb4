"""Backups (quantcore.backup, `quant backup` / `quant restore`): a backup restored into a fresh
database has the same rows in every table and the same PnL; retention keeps the newest N."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from quantcore.backup import BackupError, backup, backups_of, next_run, restore, to_prune
from quantcore.db import conninfo
from quantcore.testing import Sandbox
from tests.conftest import ROOT
from tests.helpers.trading_seed import seed_paper_trading

PRICES = {"BTCUSDT": 61_000.0, "ETHUSDT": 3_050.0, "SOLUSDT": 151.0}


def _figures(settings: Any, database: str) -> dict[str, Any]:
    """Row count of every table, realised PnL and the latest equity of `database`."""
    out: dict[str, Any] = {}
    with psycopg.connect(conninfo(settings, database)) as conn:
        tables = conn.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            out[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        out["pnl"] = conn.execute(
            "SELECT sum(pnl_quote), sum(pnl_pct_margin) FROM trades WHERE status = 'closed'"
        ).fetchone()
        out["equity"] = conn.execute(
            "SELECT equity FROM equity_snapshots ORDER BY time DESC, agent LIMIT 1"
        ).fetchone()
    return out


def _quant(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "quantcore.cli", *args], cwd=ROOT, text=True,
                          env={**os.environ, **box.env}, capture_output=True, timeout=300)  # fmt: skip


async def test_a_backup_restored_into_a_fresh_database_has_the_same_rows_and_pnl(
    fresh: Sandbox, fresh_pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    async with fresh_pool.connection() as conn:
        seeded = await seed_paper_trading(conn, PRICES, datetime.now(UTC), ("ranker", "1.0.0"))
    before = await asyncio.to_thread(_figures, fresh.settings, fresh.dbname)
    assert before["public.trades"] == seeded.closed + seeded.open > 0
    assert before["pnl"][0] is not None

    made = await asyncio.to_thread(_quant, fresh, "backup", "--dir", str(tmp_path), "--keep", "2")
    assert made.returncode == 0, made.stderr
    [dump] = backups_of(tmp_path, fresh.dbname)
    assert not list(tmp_path.glob("*.part"))

    target = f"{fresh.dbname}_restored"
    try:
        loaded = await asyncio.to_thread(_quant, fresh, "restore", str(dump), "--database", target)
        assert loaded.returncode == 0, loaded.stderr
        after = await asyncio.to_thread(_figures, fresh.settings, target)
        assert after == before  # every table's row count, realised PnL and equity
        again = await asyncio.to_thread(_quant, fresh, "restore", str(dump), "--database", target)
        assert again.returncode == 1 and "exists" in again.stderr  # never over live data
    finally:
        with psycopg.connect(conninfo(fresh.settings, "postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
            )


def test_retention_keeps_the_newest_backups(fresh: Sandbox, tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    for day in range(4):
        backup(fresh.settings, tmp_path, keep=2, now=start + timedelta(days=day))
    kept = backups_of(tmp_path, fresh.dbname)
    assert [p.name for p in kept] == [
        f"{fresh.dbname}-20260303T033000Z.dump",
        f"{fresh.dbname}-20260304T033000Z.dump",
    ]
    (tmp_path / "notes.txt").write_text("not a backup")
    assert (tmp_path / "notes.txt").exists()  # other files are never pruned


def test_to_prune_and_next_run_are_pure_rules() -> None:
    files = [Path(f"db-2026010{d}T000000Z.dump") for d in (3, 1, 2)]
    assert [p.name for p in to_prune(files, 2)] == ["db-20260101T000000Z.dump"]
    assert to_prune(files, 5) == []
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run(now, "03:30", "UTC") == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)
    assert next_run(now, "13:00", "Europe/Berlin") == datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert next_run(now, "14:00", "Europe/Berlin") == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)


def test_a_missing_file_is_refused(fresh: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no backup file"):
        restore(fresh.settings, tmp_path / "nope.dump", "ws_never_created")
