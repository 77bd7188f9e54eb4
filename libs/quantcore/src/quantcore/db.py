"""PostgreSQL access: a psycopg 3 connection pool, COPY bulk inserts, small typed query helpers."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from quantcore.config import Settings
from quantcore.logging import get_logger

T = TypeVar("T")
log = get_logger(component="db")


def conninfo(settings: Settings, dbname: str | None = None) -> str:
    """libpq connection string built from the TIMESCALE_DB_* settings (holds the password: never log)."""
    return make_conninfo(
        host=settings.timescale_db_host,
        port=settings.timescale_db_port,
        user=settings.timescale_db_user,
        password=settings.timescale_db_pass.get_secret_value(),
        dbname=dbname or settings.timescale_db_name,
        application_name=f"whalestack:{settings.instance}"[:63],
        connect_timeout=10,
    )


def app_login_env(settings: Settings) -> dict[str, str]:
    """TIMESCALE_DB_USER / TIMESCALE_DB_PASS that point a service process at the application
    login (`quant up` passes them to its children; compose sets them per container)."""
    return {
        "TIMESCALE_DB_USER": settings.timescale_db_app_user,
        "TIMESCALE_DB_PASS": settings.app_db_password().get_secret_value(),
    }


def wait_for_database(settings: Settings) -> None:
    """Block until the database accepts connections (compose starts services in parallel)."""
    deadline = time.monotonic() + settings.db_connect_timeout_s
    delay = 0.5
    while True:
        try:
            with psycopg.connect(conninfo(settings)):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable yet, retrying", error=str(exc).strip()[:200])
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


async def open_pool(settings: Settings) -> AsyncConnectionPool:
    """Open the service's pool; waits for the database up to DB_CONNECT_TIMEOUT_S."""
    await asyncio.to_thread(wait_for_database, settings)
    pool = AsyncConnectionPool(
        conninfo(settings),
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        open=False,
        name="whalestack",
    )
    await pool.open(wait=True, timeout=settings.db_connect_timeout_s)
    return pool


# --- COPY ---------------------------------------------------------------------------------------
#
# Binary COPY needs each value in its column's exact wire type. Market data arrives as Python
# floats while money/price columns are `numeric`, and psycopg cannot send a float as binary
# numeric. Such batches are staged in a temp table typed float8 (still binary COPY) and moved
# with INSERT … SELECT, where the server casts float8 → numeric (15 significant digits, so
# 0.04499 stays 0.04499). Batches of Decimals go straight into the table.

_type_cache: dict[tuple[str, tuple[str, ...]], list[str]] = {}
Rows = Sequence[Sequence[Any]]


async def _column_types(
    conn: AsyncConnection[Any], table: str, columns: Sequence[str]
) -> list[str]:
    key = (table, tuple(columns))
    if key not in _type_cache:
        cur = await conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, NULL)
            FROM pg_attribute a
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
            """,
            (table,),
        )
        types = dict(await cur.fetchall())
        missing = [c for c in columns if c not in types]
        if missing:
            raise ValueError(f"table {table} has no column(s) {', '.join(missing)}")
        _type_cache[key] = [types[c] for c in columns]
    return _type_cache[key]


def _wire_types(catalog: list[str], rows: Rows) -> list[str]:
    """The catalog types, except float8 for numeric columns whose values are floats."""
    wire = list(catalog)
    for i, t in enumerate(catalog):
        if t != "numeric":
            continue
        for row in rows:
            value = row[i]
            if value is not None:
                if isinstance(value, float):
                    wire[i] = "double precision"
                break
    return wire


async def _copy(
    conn: AsyncConnection[Any], table: str, columns: Sequence[str], types: list[str], rows: Rows
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    async with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


async def _stage(
    conn: AsyncConnection[Any], table: str, columns: Sequence[str], wire: list[str], rows: Rows
) -> str:
    """COPY rows into a transaction-scoped temp table shaped by `wire`; returns its name."""
    tag = hashlib.blake2b("|".join([table, *columns, *wire]).encode(), digest_size=4).hexdigest()
    tmp = f"_stage_{table[:40]}_{tag}"
    await conn.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DROP").format(
            sql.Identifier(tmp),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))  # types from pg_catalog
                for c, t in zip(columns, wire, strict=True)
            ),
        )
    )
    await conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(tmp)))
    await _copy(conn, tmp, columns, wire, rows)
    return tmp


async def copy_rows(
    conn: AsyncConnection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Binary COPY of rows into table. Fastest path; fails on a duplicate key (see copy_upsert)."""
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return 0
    catalog = await _column_types(conn, table, columns)
    wire = _wire_types(catalog, batch)
    if wire == catalog:
        await _copy(conn, table, columns, catalog, batch)
        return len(batch)
    async with conn.transaction():
        tmp = await _stage(conn, table, columns, wire, batch)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        await conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                sql.Identifier(table), cols, cols, sql.Identifier(tmp)
            )
        )
    return len(batch)


async def copy_upsert(
    conn: AsyncConnection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    conflict: Sequence[str],
    update: Sequence[str] = (),
) -> int:
    """Idempotent bulk write: COPY into a temp table, then INSERT … ON CONFLICT.

    With `update` empty a re-sent row is ignored (DO NOTHING); otherwise those columns are
    overwritten (DO UPDATE), so a re-fetch replaces the earlier values. Returns rows written.
    """
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return 0
    catalog = await _column_types(conn, table, columns)
    wire = _wire_types(catalog, batch)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    action = (
        sql.SQL("DO UPDATE SET ")
        + sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in update
        )
        if update
        else sql.SQL("DO NOTHING")
    )
    async with conn.transaction():
        tmp = await _stage(conn, table, columns, wire, batch)
        # DISTINCT ON keeps one row per key, so a batch holding the same key twice cannot
        # make ON CONFLICT DO UPDATE touch a row twice (an error in PostgreSQL).
        cur = await conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT DISTINCT ON ({keys}) {cols} FROM {tmp} "
                "ON CONFLICT ({keys}) {action}"
            ).format(
                t=sql.Identifier(table),
                cols=cols,
                tmp=sql.Identifier(tmp),
                keys=sql.SQL(", ").join(map(sql.Identifier, conflict)),
                action=action,
            )
        )
        return cur.rowcount


# --- typed queries ----------------------------------------------------------------------------------


async def fetch_all(
    conn: AsyncConnection[Any],
    query: str,
    params: Sequence[Any] | dict[str, Any] | None,
    row_type: type[T],
) -> list[T]:
    """Rows as instances of row_type (a dataclass or pydantic model with matching field names)."""
    async with conn.cursor(row_factory=class_row(row_type)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def fetch_dicts(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def fetch_value(
    conn: AsyncConnection[Any], query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return None if row is None else row[0]
