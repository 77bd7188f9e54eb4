"""The 5-minute rollups of 0009_dashboard_rollups.sql, in both worlds.

- TimescaleDB (not on the test machines): the statements the guarded helper would run are
  rendered here by the same SQL function and checked against TimescaleDB 2.x's documented form
  (CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous ...) AS SELECT ... GROUP BY
  time_bucket(...) WITH NO DATA; add_continuous_aggregate_policy(...)).
- Plain PostgreSQL: the trigger-kept fallback tables must hold exactly what each continuous
  aggregate's own SELECT computes from the raw table (time_bucket → the same-origin date_bin),
  through the real writers (COPY upserts that insert and update), deletes and truncates.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quantcore.db import conninfo, copy_upsert
from quantcore.store.spikes import MOVER_COLUMNS, SPIKE_COLUMNS, write_movers, write_spikes
from quantcore.streamstats import COLUMNS as STREAM_COLUMNS
from quantcore.streamstats import StreamSample
from quantcore.testing import Sandbox

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "db" / "migrations"
ROLLUPS_SQL = (MIGRATIONS / "0009_dashboard_rollups.sql").read_text(encoding="utf-8")
CAGG_CALL = re.compile(
    r"SELECT ws_create_continuous_aggregate\('(?P<name>\w+)', \$cagg\$(?P<query>.*?)\$cagg\$, "
    r"'(?P<end>[^']+)', '(?P<schedule>[^']+)'\);",
    re.S,
)
CAGGS = {m["name"]: m for m in CAGG_CALL.finditer(ROLLUPS_SQL)}
ROLLUPS = ("stream_stats_5m", "fast_price_movers_5m", "oi_volume_spikes_5m")

# TimescaleDB 2.x, CREATE MATERIALIZED VIEW (continuous aggregate):
#   CREATE MATERIALIZED VIEW <view_name> WITH ( timescaledb.continuous [, timescaledb.<option> =
#   <value> ] ) AS <select_query> [WITH [NO] DATA], select_query = SELECT ... FROM <hypertable>
#   [WHERE ...] GROUP BY time_bucket( <const_value>, <partition_col_of_hypertable> ), ...
CREATE_CAGG = re.compile(
    r"^CREATE MATERIALIZED VIEW (?P<name>[a-z_][a-z0-9_]*) "
    r"WITH \(timescaledb\.continuous, timescaledb\.materialized_only = false\) "
    r"AS (?P<query>SELECT .+ FROM (?P<source>[a-z_]+)\s+"
    r"GROUP BY time_bucket\('(?P<width>[^']+)', (?P<col>[a-z_]+)\)(?:, [a-z_]+)*) WITH NO DATA$",
    re.S,
)
# add_continuous_aggregate_policy(continuous_aggregate, start_offset, end_offset,
#   schedule_interval, if_not_exists => ...)
ADD_POLICY = re.compile(
    r"^SELECT add_continuous_aggregate_policy\('(?P<name>[a-z_][a-z0-9_]*)'::regclass, "
    r"start_offset => NULL, end_offset => '(?P<end>[^']+)'::interval, "
    r"schedule_interval => '(?P<schedule>[^']+)'::interval, if_not_exists => true\)$"
)


def _hypertables() -> dict[str, str]:
    """table -> time column, for every ws_create_hypertable call of the earlier migrations."""
    out: dict[str, str] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name >= "0009":
            break
        for table, col in re.findall(
            r"ws_create_hypertable\('(\w+)', '(\w+)'", path.read_text(encoding="utf-8")
        ):
            out[table] = col
    return out


def _statements(conn: psycopg.Connection[Any], name: str) -> list[str]:
    m = CAGGS[name]
    row = conn.execute(
        "SELECT ws_continuous_aggregate_sql(%s, %s, %s::interval, %s::interval)",
        (name, m["query"], m["end"], m["schedule"]),
    ).fetchone()
    assert row is not None
    return list(row[0])


def _as_plain(query: str) -> str:
    """A continuous aggregate's SELECT, runnable on plain PostgreSQL."""
    plain = query.replace("time_bucket('5 minutes', time)", "ws_bucket_5m(time)")
    assert "time_bucket" not in plain
    return plain


def test_every_rollup_has_a_continuous_aggregate_definition() -> None:
    assert set(CAGGS) == set(ROLLUPS)


def test_timescaledb_statements_follow_the_documented_form(settings: Any) -> None:
    hypertables = _hypertables()
    with psycopg.connect(conninfo(settings)) as conn:
        for name in ROLLUPS:
            create, policy = _statements(conn, name)
            m = CREATE_CAGG.match(" ".join(create.split()))
            assert m, create
            assert m["name"] == name
            # grouped by a time_bucket of the hypertable's own partitioning column
            assert hypertables[m["source"]] == m["col"] == "time"
            assert m["width"] == "5 minutes"
            assert "time_bucket('5 minutes', time) AS bucket" in m["query"]
            p = ADD_POLICY.match(policy)
            assert p, policy
            assert p["name"] == name
            # the newest (open) bucket is left to real-time aggregation, refreshed every bucket
            assert conn.execute(
                "SELECT %s::interval = '5 minutes' AND %s::interval = '5 minutes'",
                (p["end"], p["schedule"]),
            ).fetchone() == (True,)
            # the aggregate is valid SQL over the real table (plain stand-in for time_bucket)
            conn.execute(f"SELECT * FROM ({_as_plain(m['query'])}) q LIMIT 0")


def test_helper_is_a_no_op_without_timescaledb(settings: Any) -> None:
    with psycopg.connect(conninfo(settings)) as conn:
        assert conn.execute(
            "SELECT ws_create_continuous_aggregate('x_5m', 'SELECT 1', '5 minutes', '5 minutes')"
        ).fetchone() == (False,)
        kinds = dict(
            conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relname = ANY(%s)", (list(ROLLUPS),)
            ).fetchall()
        )
    assert kinds == dict.fromkeys(ROLLUPS, "r")  # the fallback tables


# --- the fallback tables stay equal to the aggregate's definition ------------------------------


def rollup_mismatches(conn: psycopg.Connection[Any], name: str) -> list[tuple[Any, ...]]:
    """Rows in the rollup but not in its definition's result, and the other way round."""
    query = _as_plain(CAGGS[name]["query"])
    return conn.execute(
        f"(TABLE {name} EXCEPT ALL ({query})) UNION ALL (({query}) EXCEPT ALL TABLE {name})"
    ).fetchall()


def _same_columns(conn: psycopg.Connection[Any], name: str) -> None:
    query = _as_plain(CAGGS[name]["query"])
    table = conn.execute(f"SELECT * FROM {name} LIMIT 0").description
    defined = conn.execute(f"SELECT * FROM ({query}) q LIMIT 0").description
    assert table is not None and defined is not None
    assert [(c.name, c.type_code) for c in table] == [(c.name, c.type_code) for c in defined]


@pytest.fixture
async def fresh_conn(fresh: Sandbox) -> AsyncIterator[AsyncConnection[Any]]:
    async with await AsyncConnection.connect(conninfo(fresh.settings), autocommit=True) as conn:
        yield conn


T0 = datetime(2026, 3, 2, 11, 58, 0, tzinfo=UTC)  # buckets 11:55, 12:00, 12:05 ...


def _mover(t: datetime, symbol: str, mode: str, direction: str | None) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(MOVER_COLUMNS)
    values.update(time=t, symbol=symbol, mode=mode, direction=direction, refresh_requested=False,
                  scanner="spike_scanner", scanner_version="1", inputs=Jsonb({}))  # fmt: skip
    return tuple(values[c] for c in MOVER_COLUMNS)


def _spike(t: datetime, symbol: str, mode: str, oi: bool, vol: bool) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(SPIKE_COLUMNS)
    values.update(time=t, symbol=symbol, mode=mode, is_oi_spike=oi, is_volume_spike=vol,
                  refresh_requested=False, scanner="spike_scanner", scanner_version="1",
                  inputs=Jsonb({}))  # fmt: skip
    return tuple(values[c] for c in SPIKE_COLUMNS)


def _sample(t: datetime, stream: str, group: str, length: int, pending: int | None,
            lag: int | None) -> tuple[Any, ...]:  # fmt: skip
    return StreamSample(time=t, stream=stream, consumer_group=group, length=length,
                        consumers=1 if group else None, pending=pending, lag=lag,
                        agent="journal").row()  # fmt: skip


async def test_fallback_tables_follow_inserts_upserts_deletes_and_truncates(
    fresh: Sandbox, fresh_conn: AsyncConnection[Any]
) -> None:
    def check(stage: str) -> None:
        with psycopg.connect(conninfo(fresh.settings)) as conn:
            for name in ROLLUPS:
                _same_columns(conn, name)
                assert rollup_mismatches(conn, name) == [], f"{name} after {stage}"

    minutes = [T0 + timedelta(minutes=k) for k in range(12)]
    coins = ["AUSDT", "BUSDT", "CUSDT"]
    # the spike scanner's writers: first scan of each minute, then a re-scan that changes
    # directions / spike kinds of existing rows (ON CONFLICT DO UPDATE) and adds new ones
    await write_movers(fresh_conn, [_mover(t, c, "fixed", "up" if k % 2 else "down")
                                    for k, t in enumerate(minutes) for c in coins])  # fmt: skip
    await write_spikes(fresh_conn, [_spike(t, c, "fixed", k % 2 == 0, k % 3 == 0)
                                    for k, t in enumerate(minutes) for c in coins])  # fmt: skip
    check("first scans")
    await write_movers(fresh_conn, [_mover(t, c, m, None if k == 3 else "up")
                                    for k, t in enumerate(minutes[2:9]) for c in coins
                                    for m in ("fixed", "coin_specific")])  # fmt: skip
    await write_spikes(fresh_conn, [_spike(t, c, m, True, k % 2 == 1)
                                    for k, t in enumerate(minutes[4:]) for c in coins[:2]
                                    for m in ("fixed", "coin_specific")])  # fmt: skip
    check("re-scans")
    # the journal's sampler (ON CONFLICT DO NOTHING: a repeated sample changes nothing)
    samples = [_sample(t, s, g, 100 + k * 7 % 13, k % 5 if g else None, k % 3 if g else None)
               for k, t in enumerate(minutes) for s in ("signals", "orders")
               for g in ("", "ranker")]  # fmt: skip
    samples += [_sample(t, "deadletter", "", k, None, None) for k, t in enumerate(minutes)]
    for batch in (samples[:20], samples[10:]):
        await copy_upsert(fresh_conn, "stream_stats", STREAM_COLUMNS, batch,
                          conflict=("stream", "consumer_group", "time"))  # fmt: skip
    check("stream samples")
    # deletes and updates of raw rows (retention, a fix-up by hand)
    await fresh_conn.execute("DELETE FROM fast_price_movers WHERE symbol = 'AUSDT'")
    await fresh_conn.execute("DELETE FROM oi_volume_spikes WHERE time >= %s", (minutes[6],))
    await fresh_conn.execute("DELETE FROM stream_stats WHERE time < %s", (minutes[3],))
    await fresh_conn.execute(
        "UPDATE stream_stats SET pending = 1000 WHERE time = %s", (minutes[8],)
    )
    await fresh_conn.execute(
        "UPDATE fast_price_movers SET direction = 'down', time = time + interval '20 minutes' "
        "WHERE symbol = 'BUSDT'"
    )
    check("deletes and updates")
    with psycopg.connect(conninfo(fresh.settings)) as conn:
        row = conn.execute("SELECT max(max_backlog) FROM stream_stats_5m").fetchone()
        assert row is not None and row[0] >= 1000  # the update reached the rollup
        # no bucket kept at 0 rows
        assert conn.execute(
            "SELECT count(*) FROM fast_price_movers_5m WHERE movers <= 0"
        ).fetchone() == (0,)
    for table in ("fast_price_movers", "oi_volume_spikes", "stream_stats"):
        await fresh_conn.execute(f"TRUNCATE {table}")
    check("truncates")
    with psycopg.connect(conninfo(fresh.settings)) as conn:
        for name in ROLLUPS:
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (0,)
