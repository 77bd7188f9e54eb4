"""Numbered SQL migrations: `db/migrations/NNNN_name.sql`, applied in order, once, with checksums.

- Each file runs in its own transaction together with its `schema_migrations` row.
- An applied file that was edited afterwards is refused (its checksum no longer matches):
  write a new migration instead.
- A session-level advisory lock serialises concurrent runners (compose replicas, two shells);
  the second one finds everything applied and does nothing.
- TimescaleDB-only statements live inside the guarded helpers of 0001 (`ws_create_hypertable`,
  …), so the same files apply to plain PostgreSQL and to the timescale/timescaledb image.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from pydantic import SecretStr

from quantcore.config import Settings
from quantcore.db import conninfo, wait_for_database
from quantcore.logging import get_logger

log = get_logger(component="migrations")

# Any fixed 64-bit key: all runners of every deployment of this schema take the same lock.
ADVISORY_LOCK_KEY = 0x57_68_61_6C_65_53_74_6B  # "WhaleStk"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """A migration cannot be applied (edited after apply, bad name, SQL error)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def default_dir(settings: Settings | None = None) -> Path:
    if settings is not None and settings.migrations_dir is not None:
        return settings.migrations_dir
    for base in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[4]):
        candidate = base / "db" / "migrations"
        if candidate.is_dir():
            return candidate
    raise MigrationError("no db/migrations folder found; set MIGRATIONS_DIR")


def discover(folder: Path) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        data = path.read_bytes()
        migrations.append(
            Migration(int(m.group(1)), path.name, path, hashlib.sha256(data).hexdigest())
        )
    versions = [m.version for m in migrations]
    dupes = sorted({v for v in versions if versions.count(v) > 1})
    if dupes:
        raise MigrationError(f"two migration files share version(s) {dupes}")
    return migrations


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL
)
"""


def migrate(settings: Settings, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    folder = folder or default_dir(settings)
    migrations = discover(folder)
    wait_for_database(settings)
    applied_now: list[str] = []
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_LEDGER)
            rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
            applied = {v: (n, c) for v, n, c in rows}
            for mig in migrations:
                if mig.version in applied:
                    name, checksum = applied[mig.version]
                    if checksum != mig.checksum:
                        raise MigrationError(
                            f"{mig.name} was edited after it was applied (as {name}); "
                            "applied migrations are immutable: revert the edit and add a new "
                            "migration file instead"
                        )
                    continue
                applied_now.append(_apply(conn, mig))
            unknown = sorted(set(applied) - {m.version for m in migrations})
            if unknown:
                log.warning("database has migrations this checkout does not know", versions=unknown)
            ensure_reader_login(conn, settings)
            ensure_app_login(conn, settings)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


READER_ROLE = "grafana_reader"  # created by 0008_grafana_reader.sql
WRITER_ROLE = "whalestack_writer"  # created by 0017_app_role.sql


def ensure_reader_login(conn: psycopg.Connection[tuple[object, ...]], settings: Settings) -> bool:
    """Create or update Grafana's login (GRAFANA_RO_USER / GRAFANA_RO_PASS) as a member of the
    read-only role. No password set: nothing to do (returns False). The login is read-only twice
    over: it only holds grafana_reader's SELECT grants, and its transactions default to read-only.
    """
    if settings.grafana_ro_pass is None:
        return False
    done = _ensure_login(
        conn, settings.grafana_ro_user, settings.grafana_ro_pass, READER_ROLE, "GRAFANA_RO_USER"
    )
    if done:
        ident = sql.Identifier(settings.grafana_ro_user)
        role_ddl(
            conn, sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident)
        )
        role_ddl(conn, sql.SQL("ALTER ROLE {} SET statement_timeout = '30s'").format(ident))
        log.info(
            "grafana read-only login ready", role=settings.grafana_ro_user, member_of=READER_ROLE
        )
    return done


def ensure_app_login(conn: psycopg.Connection[tuple[object, ...]], settings: Settings) -> bool:
    """Create or update the services' login (TIMESCALE_DB_APP_USER / TIMESCALE_DB_APP_PASS) as a
    member of whalestack_writer: reads and writes the tables, creates no role, database or table.
    Returns False when 0017 (the writer role) is not in the migrations folder."""
    if settings.timescale_db_app_user == settings.timescale_db_user:
        raise MigrationError(
            "TIMESCALE_DB_APP_USER must differ from TIMESCALE_DB_USER (the owner migrate runs as)"
        )
    done = _ensure_login(
        conn,
        settings.timescale_db_app_user,
        settings.app_db_password(),
        WRITER_ROLE,
        "TIMESCALE_DB_APP_USER",
    )
    if done:
        log.info(
            "application login ready", role=settings.timescale_db_app_user, member_of=WRITER_ROLE
        )
    return done


def _ensure_login(
    conn: psycopg.Connection[tuple[object, ...]],
    user: str,
    secret: SecretStr,
    group: str,
    setting: str,
) -> bool:
    """A LOGIN role `user` with this password, unprivileged, member of `group` (False when the
    migration creating `group` is not in this folder)."""
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
        return False
    ident = sql.Identifier(user)
    password = sql.Literal(secret.get_secret_value())
    found = conn.execute(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
        "FROM pg_roles WHERE rolname = %s",
        (user,),
    ).fetchone()
    if found and found[0]:
        raise MigrationError(f"{setting}={user} is a privileged role; it needs a login of its own")
    if found is None:
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT"
                    ).format(ident, password)
                )
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # created at the same moment by a runner on another database
    role_ddl(conn, sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, password))
    member = conn.execute("SELECT pg_has_role(%s, %s, 'member')", (user, group)).fetchone()
    if not (member and member[0]):
        role_ddl(conn, sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident))
    return True


# Roles are cluster-wide while advisory locks are per database: runners migrating two databases
# of one server at once (test runs, benchmarks) can update the same role row together, which
# PostgreSQL answers with "tuple concurrently updated". The statements are idempotent: retry.
_ROLE_RACES = (
    psycopg.errors.InternalError_,
    psycopg.errors.UniqueViolation,
    psycopg.errors.DuplicateObject,
    psycopg.errors.SerializationFailure,
)


def role_ddl(conn: psycopg.Connection[tuple[object, ...]], statement: sql.Composed) -> None:
    """Run one idempotent role statement (autocommit), retrying a concurrent update of the role."""
    for attempt in range(5):
        try:
            with conn.transaction():
                conn.execute(statement)
            return
        except _ROLE_RACES:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _apply(conn: psycopg.Connection[tuple[object, ...]], mig: Migration) -> str:
    started = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute(mig.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
                "VALUES (%s, %s, %s, %s)",
                (mig.version, mig.name, mig.checksum, int((time.perf_counter() - started) * 1000)),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{mig.name} failed and was rolled back: {exc}") from exc
    log.info(
        "migration applied", migration=mig.name, ms=int((time.perf_counter() - started) * 1000)
    )
    return mig.name


def status(settings: Settings, folder: Path | None = None) -> list[tuple[str, bool]]:
    """(file name, applied?) for every migration file."""
    migrations = discover(folder or default_dir(settings))
    with psycopg.connect(conninfo(settings)) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        done: set[int] = set()
        if exists and exists[0]:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    return [(m.name, m.version in done) for m in migrations]
