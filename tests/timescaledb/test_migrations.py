"""Every migration from empty on a real TimescaleDB: the hypertables, compression and retention
policies and continuous aggregates the migrations declare exist as TimescaleDB objects, each
background job runs once without error (and does its work: chunks compressed, old rows dropped,
aggregates materialized equal to their definition), and a migration that plain PostgreSQL takes
but TimescaleDB refuses fails here.

What is declared comes from the migration files themselves (the guarded helpers' calls), so a
table added by a later migration is covered without touching this file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quantcore.migrations import MigrationError, discover, migrate
from quantcore.testing import Infra, sandbox
from tests.test_rollups import ROLLUPS, rollup_mismatches
from tests.timescaledb.conftest import MIGRATIONS, Seeded, compose_image

ALL_SQL = "\n".join(p.read_text(encoding="utf-8") for p in sorted(MIGRATIONS.glob("*.sql")))
HYPERTABLES = dict(re.findall(r"SELECT ws_create_hypertable\('(\w+)', '(\w+)'", ALL_SQL))
COMPRESSED = set(re.findall(r"SELECT ws_add_compression\('(\w+)'", ALL_SQL))
RETAINED = set(re.findall(r"SELECT ws_add_retention\('(\w+)'", ALL_SQL))
CAGGS = set(re.findall(r"SELECT ws_create_continuous_aggregate\('(\w+)'", ALL_SQL))


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def test_every_migration_applies_from_empty(seeded: Seeded) -> None:
    assert seeded.applied == [m.name for m in discover(MIGRATIONS)]
    assert len(HYPERTABLES) >= 16 and set(ROLLUPS) == CAGGS
    with seeded.db.connect() as conn:
        assert conn.execute("SELECT ws_timescale_enabled()").fetchone() == (True,)


def test_hypertables_are_partitioned_on_their_time_column(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        dims = dict(
            _rows(
                conn,
                "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions "
                "WHERE dimension_type = 'Time' AND hypertable_schema = 'public'",
            )
        )
    assert dims == HYPERTABLES


def test_compression_and_retention_policies_exist(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        compressed = _rows(
            conn,
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE compression_enabled",
        )
        policies = _rows(
            conn,
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
            "WHERE proc_name IN ('policy_compression', 'policy_retention')",
        )
    assert {t for (t,) in compressed} == COMPRESSED
    assert {t for p, t in policies if p == "policy_compression"} == COMPRESSED
    assert {t for p, t in policies if p == "policy_retention"} == RETAINED


def test_continuous_aggregates_exist_with_refresh_policies(seeded: Seeded) -> None:
    with seeded.db.connect() as conn:
        caggs = _rows(
            conn,
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates",
        )
        policies = _rows(
            conn,
            "SELECT j.hypertable_name FROM timescaledb_information.jobs j "
            "WHERE j.proc_name = 'policy_refresh_continuous_aggregate'",
        )
    assert dict(caggs) == dict.fromkeys(CAGGS, False)  # real-time aggregates
    assert sorted(v for (v,) in policies) == sorted(CAGGS)  # one refresh policy each


def test_every_job_runs_once_and_does_its_work(seeded: Seeded) -> None:
    """CALL run_job for each job (PGlite runs no background worker; a real server's scheduler
    would run the same procedures), then check what each kind of job was for."""
    with seeded.db.connect() as conn:
        jobs = _rows(conn, "SELECT job_id, proc_name FROM timescaledb_information.jobs ORDER BY 1")
        assert {p for _, p in jobs} >= {
            "policy_compression",
            "policy_retention",
            "policy_refresh_continuous_aggregate",
        }
        for job_id, proc in jobs:
            try:
                conn.execute(f"CALL run_job({int(job_id)})")
            except psycopg.Error as exc:
                pytest.fail(f"job {job_id} ({proc}) failed: {exc}")
        compressed = _rows(
            conn,
            "SELECT hypertable_name, count(*) FROM timescaledb_information.chunks "
            "WHERE is_compressed GROUP BY 1",
        )
        old_ohlcv = conn.execute(
            "SELECT count(*) FROM ohlcv WHERE time < now() - interval '7 days'"
        ).fetchone()
        expired = conn.execute(
            "SELECT count(*) FROM stream_stats WHERE time < now() - interval '90 days'"
        ).fetchone()
        materialized = {}
        for name in ROLLUPS:
            schema, table = conn.execute(
                "SELECT materialization_hypertable_schema, materialization_hypertable_name "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = %s",
                (name,),
            ).fetchone() or ("", "")
            count = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
            materialized[name] = count[0] if count else 0
        mismatches = {name: rollup_mismatches(conn, name) for name in ROLLUPS}
    assert dict(compressed).get("ohlcv", 0) >= 1  # the 10-day-old chunk was compressed
    assert old_ohlcv is not None and old_ohlcv[0] > 0  # and still reads
    assert expired == (0,)  # the 100-day-old stream sample was dropped
    assert all(n > 0 for n in materialized.values()), materialized  # the refresh ran
    assert mismatches == {name: [] for name in ROLLUPS}  # aggregates equal their definition


# --- the group can fail ------------------------------------------------------------------------

# A unique key without the time column: plain PostgreSQL takes it, TimescaleDB refuses to make
# the table a hypertable ("cannot create a unique index without the column "time"").
BROKEN = """
CREATE TABLE broken_events (
    id    bigint      PRIMARY KEY,
    time  timestamptz NOT NULL
);
SELECT ws_create_hypertable('broken_events', 'time', '1 day');
"""


def _with_broken(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "9999_broken_hypertable_key.sql").write_text(BROKEN, encoding="utf-8")
    return folder


def test_a_migration_only_timescaledb_refuses_fails_here(seeded: Seeded, tmp_path: Path) -> None:
    folder = _with_broken(tmp_path)
    with pytest.raises(MigrationError, match=r"9999_broken_hypertable_key\.sql failed") as err:
        migrate(seeded.db.settings, folder)
    assert "used in partitioning" in str(err.value), err.value  # TimescaleDB says why
    with seeded.db.connect() as conn:
        assert conn.execute("SELECT to_regclass('broken_events')").fetchone() == (None,)
        ledger = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert ledger is not None and ledger[0] < 9999


def test_the_same_migration_passes_on_plain_postgresql(infra: Infra, tmp_path: Path) -> None:
    """Why the group exists: the plain-PostgreSQL suite alone would let it through."""
    with sandbox(infra, "tsbroken", run_migrations=False) as sb:
        applied = migrate(sb.settings, _with_broken(tmp_path))
    assert applied[-1] == "9999_broken_hypertable_key.sql"


def test_server_runs_the_postgresql_major_compose_runs(seeded: Seeded) -> None:
    """What compose runs is what the group runs: same PostgreSQL major (PGlite is 17), and a
    TimescaleDB 2.x with the TSL module (compression and continuous aggregates need it)."""
    m = re.search(r"-pg(\d+)$", compose_image("timescaledb"))
    assert m, compose_image("timescaledb")
    with seeded.db.connect() as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int / 10000, extversion, "
            "current_setting('timescaledb.license', true) "
            "FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    assert row is not None
    major, ts_version, license_ = row
    assert major == int(m.group(1))
    assert str(ts_version).startswith("2.")
    assert license_ in (None, "timescale")  # the TSL (community) build, not apache-only


def test_the_app_role_writes_hypertables_and_reads_aggregates(seeded: Seeded) -> None:
    """The services' role (whalestack_writer, what the app login holds) on TimescaleDB objects:
    a row in a new chunk, a row into the compressed 10-day-old range, real-time aggregates."""
    with seeded.db.connect() as conn:
        conn.execute("SET ROLE whalestack_writer")
        try:
            conn.execute(
                "INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, "
                "source) VALUES (now() + interval '30 days', 'BTCUSDT', '1m', 1, 1, 1, 1, 1, "
                "'bybit'), (now() - interval '10 days' + interval '30 seconds', 'ETHUSDT', '1m', "
                "1, 1, 1, 1, 1, 'bybit')"
            )
            conn.execute("UPDATE market_snapshots SET price = price WHERE symbol = 'BTCUSDT'")
            for name in ROLLUPS:
                conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT remove_retention_policy('stream_stats')")
        finally:
            conn.execute("RESET ROLE")
        conn.execute("DELETE FROM ohlcv WHERE time > now() + interval '1 day'")
