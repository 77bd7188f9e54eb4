"""Backups of the fleet's database: `quant backup` and `quant restore`.

A backup is one `pg_dump --format=custom` file, `BACKUP_DIR/<db>-YYYYMMDDTHHMMSSZ.dump`,
written under a temporary name and renamed when complete (a crash never leaves a half file
that looks whole). After each backup only the newest `BACKUP_KEEP` files of this database are
kept. `quant backup --daily` repeats it every day at `BACKUP_DAILY_AT` (owner's `TIMEZONE`): the
compose service `backup`.

`quant restore FILE --database NAME` loads a backup into a database that does not exist yet
(it is created; restoring over live data is refused), wrapping TimescaleDB dumps in
`timescaledb_pre_restore()` / `timescaledb_post_restore()` as Timescale documents. The
password reaches pg_dump / pg_restore through PGPASSWORD, never the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.logging import get_logger

log = get_logger(component="backup")

_STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """pg_dump / pg_restore failed, or a restore was refused; the message says why."""


def backup_name(database: str, at: datetime) -> str:
    return f"{database}-{at.astimezone(UTC):{_STAMP}}.dump"


def backups_of(directory: Path, database: str) -> list[Path]:
    """This database's complete backups in `directory`, oldest first."""
    pattern = re.compile(rf"^{re.escape(database)}-\d{{8}}T\d{{6}}Z\.dump$")
    return sorted(p for p in directory.glob(f"{database}-*.dump") if pattern.match(p.name))


def to_prune(backups: Sequence[Path], keep: int) -> list[Path]:
    """The backups beyond the newest `keep` (names sort by time)."""
    ordered = sorted(backups, key=lambda p: p.name)
    return ordered[: max(len(ordered) - keep, 0)]


def stale(backups: Sequence[Path], now: datetime, max_age: timedelta) -> str | None:
    """Why the newest backup is too old (None: fresh, or no backup made yet)."""
    if not backups:
        return None
    newest = max(backups, key=lambda p: p.name)
    stamp = datetime.strptime(newest.name.rsplit("-", 1)[1].removesuffix(".dump"), _STAMP)
    age = now - stamp.replace(tzinfo=UTC)
    if age > max_age:
        return f"newest backup {newest.name} is {age.total_seconds() / 3600:.1f} h old"
    return None


def next_run(now: datetime, daily_at: str, timezone: str) -> datetime:
    """The next `HH:MM` in the owner's time zone strictly after `now` (UTC)."""
    hour, minute = (int(x) for x in daily_at.split(":"))
    local = now.astimezone(ZoneInfo(timezone))
    run = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if run <= local:
        run = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run.astimezone(UTC)


def _pg_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PGHOST": settings.timescale_db_host,
        "PGPORT": str(settings.timescale_db_port),
        "PGUSER": settings.timescale_db_user,
        "PGPASSWORD": settings.timescale_db_pass.get_secret_value(),
        "PGCONNECT_TIMEOUT": "10",
    }


def _run(args: list[str], settings: Settings) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments are ours
            args, env=_pg_env(settings), capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{args[0]} is not installed (PostgreSQL client tools)") from exc
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}")
    return done.stdout


def backup(settings: Settings, directory: Path, keep: int, now: datetime | None = None) -> Path:
    """Dump the database to a new file in `directory`; prune to the newest `keep`."""
    database = settings.timescale_db_name
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / backup_name(database, now or datetime.now(UTC))
    partial = target.with_name(target.name + ".part")
    try:
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
              f"--file={partial}", f"--dbname={database}"], settings)  # fmt: skip
        partial.rename(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    for old in to_prune(backups_of(directory, database), keep):
        old.unlink()
        log.info("old backup removed", file=old.name, keep=keep)
    log.info("backup written", file=str(target), bytes=target.stat().st_size)
    return target


def restore(settings: Settings, file: Path, database: str) -> None:
    """Create `database` and load `file` into it. Refused when `database` exists."""
    if not file.is_file():
        raise BackupError(f"no backup file {file}")
    listing = _run(["pg_restore", "--list", str(file)], settings)
    timescale = re.search(r"EXTENSION - timescaledb\b", listing) is not None
    with psycopg.connect(conninfo(settings, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone():
            raise BackupError(
                f"database {database!r} exists: restore into a new name (--database), then "
                "point TIMESCALE_DB_NAME at it"
            )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    if timescale:
        with psycopg.connect(conninfo(settings, database), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("SELECT timescaledb_pre_restore()")
    try:
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
              f"--dbname={database}", str(file)], settings)  # fmt: skip
    finally:
        if timescale:
            with psycopg.connect(conninfo(settings, database), autocommit=True) as conn:
                conn.execute("SELECT timescaledb_post_restore()")
    log.info("backup restored", file=str(file), database=database)


async def backup_daily(settings: Settings, directory: Path, keep: int, stop: asyncio.Event) -> None:
    """Back up every day at BACKUP_DAILY_AT until `stop`; a failed backup is logged (error) and
    tried again at the next run, never fatal."""
    while not stop.is_set():
        at = next_run(datetime.now(UTC), settings.backup_daily_at, settings.timezone)
        log.info("next backup", at=at.isoformat())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=(at - datetime.now(UTC)).total_seconds())
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(backup, settings, directory, keep)
        except Exception as exc:
            log.error("backup failed; next try at the next run", error=str(exc)[:500])


__all__ = [
    "BackupError",
    "backup",
    "backup_daily",
    "backups_of",
    "next_run",
    "restore",
    "stale",
    "to_prune",
]
