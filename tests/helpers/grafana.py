"""Running a Grafana panel the way Grafana does: its variables first (as the reader), then its
SQL with macros and variables expanded as the provisioned datasource expands them (plain
PostgreSQL form, or `timescaledb: true`: $__timeGroup becomes time_bucket)."""

from __future__ import annotations

from typing import Any

import psycopg

from quantcore import dashboards as dash


def variables_for(
    conn: psycopg.Connection[tuple[Any, ...]],
    d: dash.Dashboard,
    rng: dash.TimeRange,
    pick: str,
    *,
    timescaledb: bool = False,
) -> dict[str, dash.Variable]:
    """Run each query variable (as the reader) and select "All" (pick='all') or the first option."""
    out: dict[str, dash.Variable] = {}
    for v in d.variables:
        rows = conn.execute(dash.render(v.raw_sql, out, rng, timescaledb=timescaledb)).fetchall()
        options = tuple(str(r[0]) for r in rows)
        if v.include_all and pick == "all":
            value: str | tuple[str, ...] = dash.ALL_VALUE
        elif v.multi:
            value = options[:1]
        else:
            value = options[0] if options else ""
        out[v.name] = dash.Variable(v.name, value, options, v.multi, v.include_all, v.all_value)
    return out


def run_panel_query(
    conn: psycopg.Connection[tuple[Any, ...]],
    q: dash.PanelQuery,
    variables: dict[str, dash.Variable],
    rng: dash.TimeRange,
    *,
    timescaledb: bool = False,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(problems, rows): the SQL fails, or its columns are not what the panel expects."""
    sql = dash.render(q.raw_sql, variables, rng, timescaledb=timescaledb, max_points=q.max_points)
    try:
        cur = conn.execute(sql)
    except psycopg.Error as exc:
        return [f"query failed: {exc}\n{sql}"], []
    if cur.description is None:
        return ["query returned no result set"], []
    columns = [(c.name, c.type_code) for c in cur.description]
    return dash.result_problems(q, columns), cur.fetchall()
