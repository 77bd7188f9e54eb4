"""A real TimescaleDB for tests/timescaledb/, whichever this machine can give:

1. `TEST_TIMESCALEDB_URL` when set (an admin connection to a TimescaleDB server);
2. with a Docker engine: testcontainers runs the image and tag docker-compose.yaml runs;
3. with Node.js (our machines and CI): tests/timescaledb/pglite/server.mjs, PGlite (PostgreSQL
   17 in WASM) with TimescaleDB 2.x and its TSL module from the npm registry, behind a small
   wire-protocol front on a local port (`npm ci` there first when node_modules is missing);
4. with none of these, every test of the group is skipped with the reason in the summary.

The PGlite server is ONE backend: its front hands it to one client session at a time, so the
group opens one connection at a time (no pools), and TimescaleDB's background workers never run
there, so the tests call each job themselves (`CALL run_job(id)`), as the group does everywhere.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import yaml
from psycopg import sql
from pydantic import SecretStr

from quantcore.config import Settings
from quantcore.db import conninfo
from quantcore.migrations import migrate
from tests.helpers.trading_seed import seed_paper_trading

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "db" / "migrations"
PGLITE_DIR = Path(__file__).resolve().parent / "pglite"
PGLITE_PACKAGE = PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite"
SERVER_START_TIMEOUT_S = 120
READER_LOGIN = "grafana_ro"
READER_PASS = "test-only-reader-password"  # a throwaway test server


def compose_image(service: str) -> str:
    """The image:tag docker-compose.yaml runs for a service (the one place tags are defined)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    return str(compose["services"][service]["image"])


@dataclass
class TimescaleServer:
    admin_url: str  # superuser connection: the owner role of a compose deployment
    origin: str  # "env", "testcontainers <image>" or "pglite <version>"
    single_session: bool  # True for PGlite: one connection at a time, one database

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True, **kwargs)


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the PGlite server exited with {proc.returncode}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line.strip()
    raise RuntimeError(f"the PGlite server did not say {prefix!r} within {timeout}s")


def _pglite(tmp: Path) -> Iterator[TimescaleServer]:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "TIMESCALEDB GROUP SKIPPED: no TEST_TIMESCALEDB_URL, no Docker engine and no Node.js "
            "(install node >= 20 to run it on PGlite + TimescaleDB); hypertables, compression, "
            "retention, continuous aggregates and the time_bucket panels were NOT checked"
        )
    if not PGLITE_PACKAGE.is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("TIMESCALEDB GROUP SKIPPED: node found but no npm to install PGlite")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=PGLITE_DIR, check=True
        )
    log = (tmp / "pglite-server.log").open("w")
    proc = subprocess.Popen(
        [node, str(PGLITE_DIR / "server.mjs"), "0"],
        cwd=PGLITE_DIR,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        port = int(_wait_for_line(proc, "listening ", SERVER_START_TIMEOUT_S).split()[1])
        url = f"postgresql://postgres:pglite@127.0.0.1:{port}/postgres"
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
        assert row, "the PGlite server has no timescaledb extension"
        yield TimescaleServer(url, f"pglite (TimescaleDB {row[0]})", single_session=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]  # comes with testcontainers

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def timescale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TimescaleServer]:
    url = os.environ.get("TEST_TIMESCALEDB_URL")
    if url:
        yield TimescaleServer(url, "env", single_session=False)
    elif os.environ.get("QUANT_TEST_NO_DOCKER") != "1" and _docker_available():
        from testcontainers.postgres import PostgresContainer

        image = compose_image("timescaledb")
        container = PostgresContainer(image, driver=None).start()
        try:
            yield TimescaleServer(
                container.get_connection_url(), f"testcontainers {image}", single_session=False
            )
        finally:
            container.stop()
    else:
        yield from _pglite(tmp_path_factory.mktemp("timescaledb"))


@dataclass
class TimescaleDb:
    server: TimescaleServer
    settings: Settings  # the owner (migrate's) connection settings

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(conninfo(self.settings), autocommit=True)


@pytest.fixture(scope="session")
def tsdb(timescale: TimescaleServer) -> Iterator[TimescaleDb]:
    """An empty database on the TimescaleDB server (PGlite: its only one, fresh per run)."""
    print(f"\ntimescaledb group: {timescale.origin}", file=sys.stderr)
    dbname = "postgres"
    if not timescale.single_session:
        dbname = f"ws_tsdb_{uuid.uuid4().hex[:10]}"
        with timescale.connect() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = urlparse(timescale.admin_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init-only argument
        timescale_db_host=url.hostname or "127.0.0.1",
        timescale_db_port=url.port or 5432,
        timescale_db_user=url.username or "postgres",
        timescale_db_pass=SecretStr(url.password or "unused"),
        timescale_db_name=dbname,
        grafana_ro_user=READER_LOGIN,
        grafana_ro_pass=SecretStr(READER_PASS),
    )
    try:
        yield TimescaleDb(timescale, settings)
    finally:
        if not timescale.single_session:
            with timescale.connect() as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )


# --- migrated and seeded -------------------------------------------------------------------------

COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
PRICES = {"BTCUSDT": 91_000.0, "ETHUSDT": 3_100.0, "SOLUSDT": 140.0, "DOGEUSDT": 0.16}

# Market and scanner rows over the last 2 hours (a row a minute), plus rows old enough for the
# compression (7 days) and retention (90 days) policies to act on.
SEED_SQL = """
INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, source)
SELECT date_trunc('minute', now()) - m * interval '1 minute', s, '1m', 1, 2, 0.5, 1.5, 10, 'bybit'
FROM generate_series(0, 119) m, unnest(%(coins)s::text[]) s
UNION ALL
SELECT date_trunc('minute', now()) - interval '10 days' - m * interval '1 minute', s, '1m',
       1, 2, 0.5, 1.5, 10, 'bybit'
FROM generate_series(0, 59) m, unnest(%(coins)s::text[]) s;

INSERT INTO market_snapshots (time, symbol, price, source)
SELECT date_trunc('minute', now()) - m * interval '1 minute', s, 100 + m, 'bybit'
FROM generate_series(0, 119) m, unnest(%(coins)s::text[]) s;

INSERT INTO stream_stats (time, stream, consumer_group, length, consumers, pending, lag, agent)
SELECT date_trunc('minute', now()) - m * interval '1 minute', st, g, 100 + m, 1, m %% 7, m %% 3,
       'journal'
FROM generate_series(0, 119) m, (VALUES ('signals', 'autotrader'), ('deadletter', '')) v(st, g)
UNION ALL
SELECT now() - interval '100 days', 'signals', 'autotrader', 1, 1, 0, 0, 'journal';

INSERT INTO fast_price_movers (time, symbol, mode, direction, price, price_change_1m_pct,
                               scanner, scanner_version)
SELECT date_trunc('minute', now()) - m * interval '1 minute', s, 'fixed',
       CASE WHEN m %% 2 = 0 THEN 'up' ELSE 'down' END, 100, 1.5, 'spike_scanner', '1'
FROM generate_series(0, 119) m, unnest(%(coins)s::text[]) s;

INSERT INTO oi_volume_spikes (time, symbol, mode, oi_change_15m_pct, volume_ratio, is_oi_spike,
                              is_volume_spike, scanner, scanner_version)
SELECT date_trunc('minute', now()) - m * interval '1 minute', s, 'fixed', 3, 4, m %% 2 = 0,
       m %% 3 = 0, 'spike_scanner', '1'
FROM generate_series(0, 119) m, unnest(%(coins)s::text[]) s;
"""


@dataclass
class Seeded:
    db: TimescaleDb
    applied: list[str]
    seeded_at: datetime


@pytest.fixture(scope="session")
def seeded(tsdb: TimescaleDb) -> Seeded:
    """Every migration applied from empty by `migrate` (as the owner, Grafana's login created as
    compose creates it), then market / scanner rows and the synthetic paper-trading history."""
    applied = migrate(tsdb.settings, MIGRATIONS)
    now = datetime.now(UTC)
    with tsdb.connect() as conn:
        for statement in SEED_SQL.split(";\n\n"):
            conn.execute(statement, {"coins": list(COINS)})
        conn.execute(
            "INSERT INTO scanners (name, version, params_hash) VALUES ('ranker', '1', 'seed') "
            "ON CONFLICT DO NOTHING"
        )

    async def seed_trading() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo(tsdb.settings)) as conn:
            await seed_paper_trading(conn, PRICES, now, ("ranker", "1"))
            await conn.commit()

    asyncio.run(seed_trading())
    return Seeded(tsdb, applied, now)
