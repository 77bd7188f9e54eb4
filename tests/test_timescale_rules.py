"""TimescaleDB's rules, checked on plain PostgreSQL (every run, no TimescaleDB needed), so a
migration that only TimescaleDB would refuse is caught even where tests/timescaledb/ is skipped:

- every unique key (primary key included) of a hypertable contains its time column;
- a continuous aggregate is created WITH NO DATA (a migration runs in a transaction, where one
  cannot be refreshed);
- TimescaleDB-only calls appear only inside the guarded helpers (`ws_*` functions, the
  `$cagg$` definitions they receive, DO blocks that test ws_timescale_enabled()).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quantcore.db import conninfo
from quantcore.migrations import migrate
from quantcore.testing import Infra, sandbox

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "db" / "migrations"

HYPERTABLE_CALL = re.compile(r"SELECT ws_create_hypertable\('(\w+)', '(\w+)'")
TIMESCALE_ONLY = re.compile(
    r"\b(create_hypertable|add_compression_policy|add_retention_policy|"
    r"add_continuous_aggregate_policy|remove_\w+_policy|add_job|compress_chunk|"
    r"set_chunk_time_interval|time_bucket(?:_gapfill)?|timescaledb\.\w+|"
    r"timescaledb_information|_timescaledb_\w+)\b",
    re.I,
)


def hypertables(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(folder.glob("*.sql")):
        out.update(HYPERTABLE_CALL.findall(path.read_text(encoding="utf-8")))
    return out


def keys_without_time(conn: psycopg.Connection[Any], tables: dict[str, str]) -> list[str]:
    """'table.index' for each unique index of a hypertable lacking the table's time column."""
    rows = conn.execute(
        "SELECT t.relname, i.relname, array_agg(a.attname::text) "
        "FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public' "
        "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey) "
        "WHERE x.indisunique AND t.relname = ANY (%s) GROUP BY 1, 2",
        (list(tables),),
    ).fetchall()
    return sorted(f"{t}.{i}" for t, i, cols in rows if tables[t] not in (cols or []))


def unguarded_timescale_calls(sql: str) -> list[str]:
    """TimescaleDB-only words outside the guarded places (comments ignored)."""
    text = re.sub(r"--[^\n]*", "", sql)
    # bodies of the guarded helper functions ws_*(...) ... AS $tag$ ... $tag$
    text = re.sub(
        r"CREATE (?:OR REPLACE )?FUNCTION ws_\w+\(.*?AS (\$\w*\$).*?\1", "", text, flags=re.S | re.I
    )
    text = re.sub(r"\$cagg\$.*?\$cagg\$", "", text, flags=re.S)  # definitions passed to them
    text = re.sub(r"COMMENT ON .*?';", "", text, flags=re.S | re.I)  # words about them
    # DO blocks that branch on ws_timescale_enabled()
    text = re.sub(
        r"DO (\$\w*\$)(?:(?!\1).)*?ws_timescale_enabled\(\).*?\1", "", text, flags=re.S | re.I
    )
    return [m.group(0) for m in TIMESCALE_ONLY.finditer(text)]


def test_every_hypertable_key_contains_its_time_column(settings: Any) -> None:
    tables = hypertables(MIGRATIONS)
    assert len(tables) >= 16
    with psycopg.connect(conninfo(settings)) as conn:
        assert keys_without_time(conn, tables) == []


def test_continuous_aggregates_are_created_with_no_data() -> None:
    for path in sorted(MIGRATIONS.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for m in re.finditer(r"timescaledb\.continuous", text):
            statement = text[m.start() : text.find(";", m.start())]
            assert "WITH NO DATA" in statement, f"{path.name}: {statement[:200]}"


@pytest.mark.parametrize("path", sorted(MIGRATIONS.glob("*.sql")), ids=lambda p: p.name)
def test_timescaledb_only_calls_are_guarded(path: Path) -> None:
    assert unguarded_timescale_calls(path.read_text(encoding="utf-8")) == []


# --- the guards can fail -------------------------------------------------------------------------


def test_the_guards_catch_what_timescaledb_would_refuse(infra: Infra, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE broken_events (id bigint PRIMARY KEY, time timestamptz NOT NULL);\n"
        "SELECT ws_create_hypertable('broken_events', 'time', '1 day');\n"
    )
    with sandbox(infra, "tsrules", run_migrations=False) as sb:
        migrate(sb.settings, folder)  # plain PostgreSQL takes it
        with psycopg.connect(conninfo(sb.settings)) as conn:
            assert keys_without_time(conn, hypertables(folder)) == [
                "broken_events.broken_events_pkey"
            ]
    assert unguarded_timescale_calls("SELECT create_hypertable('x', 'time');") == [
        "create_hypertable"
    ]
    assert unguarded_timescale_calls("CREATE INDEX ON x (time_bucket('1 hour', time));") == [
        "time_bucket"
    ]
