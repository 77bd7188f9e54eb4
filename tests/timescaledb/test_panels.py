"""Every Grafana panel and variable, expanded exactly as the provisioned datasource expands it
(`timescaledb: true`: $__timeGroup / $__timeGroupAlias become time_bucket), run as Grafana's
read-only role on a real TimescaleDB over the seeded database (continuous aggregates refreshed),
with the columns each panel's config names checked. A panel whose time_bucket form errors or
returns the wrong columns fails `test_panel_query_in_its_timescaledb_form`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from quantcore import dashboards as dash
from quantcore.db import conninfo
from quantcore.migrations import READER_ROLE
from tests.helpers.grafana import run_panel_query, variables_for
from tests.timescaledb.conftest import READER_LOGIN, READER_PASS, Seeded

DASHBOARDS = dash.load_dashboards(dash.default_folder())
QUERIES = [q for d in DASHBOARDS for q in d.queries]
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def _dashboard(uid: str) -> dash.Dashboard:
    return next(d for d in DASHBOARDS if d.uid == uid)


@contextmanager
def reader(seeded: Seeded) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """Grafana's login. PGlite has one backend and no logins of its own: there the owner's
    session becomes the role (SET ROLE) with the login's read-only default, which checks the
    same grants; on a real server it is the real login `quant migrate` created."""
    settings = seeded.db.settings
    if seeded.db.server.single_session:
        with psycopg.connect(conninfo(settings), autocommit=True) as conn:
            conn.execute(f"SET ROLE {READER_LOGIN}")
            conn.execute("SET default_transaction_read_only = on")
            yield conn
    else:
        info = psycopg.conninfo.make_conninfo(
            conninfo(settings), user=READER_LOGIN, password=READER_PASS
        )
        with psycopg.connect(info, autocommit=True) as conn:
            yield conn


def test_reader_is_the_read_only_login(seeded: Seeded) -> None:
    with reader(seeded) as conn:
        row = conn.execute(
            "SELECT current_user, pg_has_role(current_user, %s, 'member'), "
            "current_setting('default_transaction_read_only')",
            (READER_ROLE,),
        ).fetchone()
        conn.execute("SET default_transaction_read_only = off")  # the grants must stop it
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM trades")
    assert row == (READER_LOGIN, True, "on")


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_panel_query_in_its_timescaledb_form(seeded: Seeded, query: dash.PanelQuery) -> None:
    """Both ranges ($__interval 1m on the raw tables, 10m on the continuous aggregates), with
    each variable on All and on its first option."""
    problems: list[str] = []
    with reader(seeded) as conn:
        for span, delta in RANGES.items():
            rng = dash.TimeRange.last(delta)
            for pick in ("all", "one"):
                d = _dashboard(query.dashboard)
                variables = variables_for(conn, d, rng, pick, timescaledb=True)
                found, _ = run_panel_query(conn, query, variables, rng, timescaledb=True)
                problems += [f"{span}/{pick}: {p}" for p in found]
    assert problems == []


def test_time_groups_are_sent_as_time_bucket() -> None:
    """The group really runs the time_bucket form: every $__timeGroup becomes time_bucket."""
    rng = dash.TimeRange.last(timedelta(hours=24))
    grouped = [q for q in QUERIES if "$__timeGroup" in q.raw_sql]
    assert grouped
    for q in grouped:
        variables = {
            v.name: dash.Variable(
                v.name, dash.ALL_VALUE, ("x",), v.multi, v.include_all, v.all_value
            )
            for v in _dashboard(q.dashboard).variables
        }
        sql = dash.render(q.raw_sql, variables, rng, timescaledb=True, max_points=q.max_points)
        assert "time_bucket(" in sql and "floor(extract(epoch" not in sql, q.name


def test_the_panel_check_can_fail(seeded: Seeded, tmp_path: Path) -> None:
    model = _dashboard("whalestack-trading").model
    base = model["panels"][1]
    broken = {**base, "id": 999, "title": "broken"}
    broken["targets"] = [
        {**base["targets"][0], "rawSql": "SELECT $__timeGroupAlias(time, 1m), 1 AS v FROM nope"}
    ]
    wrong = {**base, "id": 998, "title": "wrong columns"}
    wrong["targets"] = [{**base["targets"][0], "rawSql": "SELECT 1 AS something_else"}]
    path = tmp_path / "with_broken.json"
    path.write_text(json.dumps({**model, "panels": [*model["panels"], broken, wrong]}))
    d = dash.load_dashboard(path)
    rng = dash.TimeRange.last(timedelta(hours=24))
    with reader(seeded) as conn:
        variables = variables_for(conn, d, rng, "all", timescaledb=True)
        found = {
            q.title: run_panel_query(conn, q, variables, rng, timescaledb=True)[0]
            for q in d.queries
            if q.title in ("broken", "wrong columns")
        }
    assert "query failed" in found["broken"][0] and "time_bucket" in found["broken"][0]
    assert found["wrong columns"] and all("missing column" in p for p in found["wrong columns"])
