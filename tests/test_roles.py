"""Least privilege on the database: `quant migrate` runs as the owner and creates the services'
application login (TIMESCALE_DB_APP_USER, member of whalestack_writer) and Grafana's read-only
login; the services connect as the application login (`quant up` here, compose by its
environment), which reads and writes every table but is no superuser and cannot create roles,
databases or tables, drop what it does not own, or rewrite the migration ledger.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from quantcore.config import DEV_APP_DB_PASSWORD, Settings
from quantcore.db import app_login_env, conninfo
from quantcore.migrations import WRITER_ROLE, MigrationError, ensure_app_login, migrate
from quantcore.testing import Infra, sandbox
from tests.conftest import ROOT, eventually

MIGRATIONS = ROOT / "db" / "migrations"


def app_conninfo(settings: Settings) -> str:
    env = app_login_env(settings)
    return make_conninfo(
        conninfo(settings), user=env["TIMESCALE_DB_USER"], password=env["TIMESCALE_DB_PASS"]
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(app_conninfo(settings), autocommit=True) as conn:
        yield conn


def test_the_app_login_is_unprivileged_and_a_writer(settings: Settings) -> None:
    with psycopg.connect(conninfo(settings)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
            "rolcanlogin, pg_has_role(rolname, %s, 'member') FROM pg_roles WHERE rolname = %s",
            (WRITER_ROLE, settings.timescale_db_app_user),
        ).fetchone()
    assert row == (False, False, False, False, False, True, True)
    assert settings.timescale_db_app_user != settings.timescale_db_user


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE ROLE intruder LOGIN SUPERUSER",
        "CREATE ROLE intruder",
        "DROP DATABASE postgres",
        "CREATE DATABASE intruder",
        "CREATE TABLE intruder (x int)",
        "DROP TABLE trades",
        "ALTER TABLE trades ADD COLUMN intruder int",
        "TRUNCATE trades",
        "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
        "VALUES (9999, 'x', 'x', 0)",
        "DELETE FROM schema_migrations",
        "ALTER ROLE grafana_reader SUPERUSER",
    ],
)
def test_the_app_login_cannot(app: psycopg.Connection[tuple[Any, ...]], statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(statement)


def test_the_app_login_cannot_drop_its_own_database(
    app: psycopg.Connection[tuple[Any, ...]], settings: Settings
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(f'DROP DATABASE "{settings.timescale_db_name}"')


def test_the_app_login_reads_and_writes_every_table(
    app: psycopg.Connection[tuple[Any, ...]],
) -> None:
    missing = app.execute(
        "SELECT c.relname, p.priv FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p(priv) "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
        "AND NOT (c.relname = 'schema_migrations' AND p.priv <> 'SELECT') "
        "AND NOT has_table_privilege(c.oid, p.priv)"
    ).fetchall()
    assert missing == []
    # and really writes: a service log line, as the services do
    app.execute(
        "INSERT INTO agent_logs (time, event_id, agent, service, instance, level, event_type, "
        "message) VALUES (now(), gen_random_uuid(), 'tests', 'roles', 'roles', 'info', "
        "'roles.check', 'written as the app login')"
    )
    assert app.execute("SELECT current_user").fetchone() == ("whalestack_app",)


def test_tables_of_later_migrations_get_the_grants(infra: Infra, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    (folder / "9998_later_table.sql").write_text(
        "CREATE TABLE later_things (id bigserial PRIMARY KEY, note text NOT NULL);\n"
    )
    with sandbox(infra, "roles", run_migrations=False) as sb:
        migrate(sb.settings, folder)
        with psycopg.connect(app_conninfo(sb.settings), autocommit=True) as conn:
            conn.execute("INSERT INTO later_things (note) VALUES ('default privileges')")
            assert conn.execute("SELECT count(*) FROM later_things").fetchone() == (1,)


def test_the_app_login_must_not_be_the_owner(settings: Settings) -> None:
    same = settings.model_copy(update={"timescale_db_app_user": settings.timescale_db_user})
    with (
        psycopg.connect(conninfo(settings), autocommit=True) as conn,
        pytest.raises(MigrationError, match="must differ from TIMESCALE_DB_USER"),
    ):
        ensure_app_login(conn, same)


def test_an_empty_app_password_means_the_local_default(settings: Settings) -> None:
    from pydantic import SecretStr

    empty = settings.model_copy(update={"timescale_db_app_pass": SecretStr("")})
    assert app_login_env(empty)["TIMESCALE_DB_PASS"] == DEV_APP_DB_PASSWORD


@pytest.mark.e2e
def test_quant_up_runs_the_services_as_the_app_login(box: Any, settings: Settings) -> None:
    """The journal started by `quant up` holds its connections as the app login."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantcore.cli", "up", "--only", "journal", "--no-migrate"],
        env={**os.environ, **box.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def children() -> list[int]:
        """The processes `quant up` started (the journal): not this suite's own pools, which
        also connect to this database as the owner."""
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == proc.pid:
                kids.append(int(stat.parent.name))
        return kids

    def users() -> set[str]:
        names = [f"whalestack:{socket.gethostname()}:{pid}"[:63] for pid in children()]
        if not names:
            return set()
        with psycopg.connect(conninfo(settings)) as conn:
            rows = conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = ANY(%s)",
                (settings.timescale_db_name, names),
            ).fetchall()
        return {r[0] for r in rows}

    try:
        found = eventually(lambda: users() or None, timeout=60, interval=0.5)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert found == {settings.timescale_db_app_user}


def test_migrating_several_databases_of_one_server_at_once(infra: Infra) -> None:
    """The logins are cluster-wide, the migration lock per database: concurrent runners on
    different databases update the same roles, and every one of them must still succeed."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        boxes = [
            stack.enter_context(sandbox(infra, f"rolerace{i}", run_migrations=False))
            for i in range(4)
        ]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "quantcore.cli", "migrate"],
                env={**os.environ, **sb.env, "GRAFANA_RO_PASS": "test-only-reader-password"},
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for sb in boxes
        ]
        outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outs
