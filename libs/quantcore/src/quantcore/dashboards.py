"""Grafana dashboards as data: every panel's SQL, expanded the way Grafana expands it.

Grafana turns a panel's `rawSql` into the SQL it sends in two steps, reproduced here so tests
and benchmarks run exactly what Grafana would run:

1. the frontend's template service replaces dashboard variables (`$agent`, `${agent}`,
   `${scanner:sqlstring}`, `[[coin]]`) and built-ins (`$__interval`, `$__interval_ms`,
   `$__from`, `$__to`); a multi-value or include-All variable becomes a list of quoted literals
   (the PostgreSQL datasource's default format), "All" becomes the custom all value verbatim when
   the variable has one, else every option;
2. the PostgreSQL datasource's macro engine (grafana pkg/tsdb/grafana-postgresql-datasource,
   macros.go, and sqleng's Interpolate) replaces `$__timeFilter(col)`, `$__timeFrom()`,
   `$__timeTo()`, `$__timeGroup(col, interval[, fill])`, `$__timeGroupAlias(...)`, `$__time(col)`,
   `$__timeEpoch(col)`, `$__unixEpochFilter(col)`, `$__unixEpochGroup(...)`, ... With the
   datasource's TimescaleDB switch on, `$__timeGroup` becomes `time_bucket(...)`; off (plain
   PostgreSQL), `floor(extract(epoch from col)/N)*N`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ALL_VALUE = "$__all"  # what Grafana stores as the current value when "All" is selected

# --- time range and interval ----------------------------------------------------------------

_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000,
           "y": 31536000}  # fmt: skip
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|M|y)\s*$")

# Grafana's kbn.roundInterval: (upper bound ms, rounded ms)
_ROUND = [
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000),
    (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000),
    (1500000, 1200000), (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
    (16200000, 10800000), (32400000, 21600000), (86400000, 43200000), (604800000, 86400000),
    (1814400000, 604800000), (3628800000, 2592000000),
]  # fmt: skip


class DashboardError(Exception):
    """A panel's SQL cannot be expanded (unknown macro, variable or format)."""


def parse_interval(text: str) -> float:
    """Seconds in a Grafana interval string ('10s', '1m', '500ms', "'5m'")."""
    m = _INTERVAL.match(text.strip().strip("'"))
    if not m:
        raise DashboardError(f"cannot parse interval {text!r}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def format_interval(seconds: float) -> str:
    """Grafana's secondsToHms-style text: the largest whole unit ('1m', '12h', '1d', '500ms')."""
    ms = round(seconds * 1000)
    for unit, size in (("y", 31536000000), ("d", 86400000), ("h", 3600000), ("m", 60000),
                       ("s", 1000)):  # fmt: skip
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - span, end)

    def interval_s(self, max_points: int = 1000, min_interval_s: float = 10.0) -> float:
        """The panel's $__interval: range / data points, rounded like Grafana, at least the
        datasource's minimum (jsonData.timeInterval)."""
        raw_ms = (self.end - self.start).total_seconds() * 1000 / max(max_points, 1)
        rounded = next((r for bound, r in _ROUND if raw_ms < bound), 31536000000)
        return max(rounded / 1000, min_interval_s)


def _rfc3339(t: datetime) -> str:
    """Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped, 'Z')."""
    t = t.astimezone(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _go_float(x: float) -> str:
    """Go's %v of a float64 (300 → '300', 0.5 → '0.5')."""
    return str(int(x)) if float(x).is_integer() else repr(x)


# --- 2. the PostgreSQL macro engine ------------------------------------------------------------

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def expand_macros(sql: str, rng: TimeRange, interval_s: float, timescaledb: bool) -> str:
    """sqleng.Interpolate, then the postgres macro engine (same order as Grafana's backend)."""
    sql = sql.replace("$__interval_ms", str(round(interval_s * 1000)))
    sql = sql.replace("$__interval", format_interval(interval_s))
    sql = sql.replace("$__unixEpochFrom()", str(int(rng.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(rng.end.timestamp())))
    original = sql

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        # pre-5.3 compatibility: `$__timeGroup(...)` directly followed by ',' gets AS "time"
        if name == "__timeGroup":
            at = original.find(m.group(0))
            end = at + len(m.group(0))
            if at >= 0 and end < len(original) and original[end] == ",":
                name = "__timeGroupAlias"
        args = [a.strip(" ") for a in m.group(2).split(",")]
        return _macro(name, args, rng, timescaledb)

    return _MACRO.sub(one, sql)


def _macro(name: str, args: list[str], rng: TimeRange, timescaledb: bool) -> str:
    col = args[0] if args and args[0] else None

    def need_col() -> str:
        if col is None:
            raise DashboardError(f"missing time column argument for macro {name}")
        return col

    frm, to = _rfc3339(rng.start), _rfc3339(rng.end)
    if name == "__time":
        return f'{need_col()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {need_col()}) as "time"'
    if name == "__timeFilter":
        return f"{need_col()} BETWEEN '{frm}' AND '{to}'"
    if name == "__timeFrom":
        return f"'{frm}'"
    if name == "__timeTo":
        return f"'{to}'"
    if name in ("__timeGroup", "__unixEpochGroup"):
        if len(args) < 2:
            raise DashboardError(f"macro {name} needs time column and interval")
        secs = parse_interval(args[1])
        if name == "__unixEpochGroup":
            return f"floor(({args[0]})/{_go_float(secs)})*{_go_float(secs)}"
        if timescaledb:
            return f"time_bucket('{secs:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{_go_float(secs)})*{_go_float(secs)}"
    if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
        return _macro(name.removesuffix("Alias"), args, rng, timescaledb) + ' AS "time"'
    if name == "__unixEpochFilter":
        c = need_col()
        return f"{c} >= {int(rng.start.timestamp())} AND {c} <= {int(rng.end.timestamp())}"
    if name == "__unixEpochNanoFilter":
        c = need_col()
        return f"{c} >= {_nanos(rng.start)} AND {c} <= {_nanos(rng.end)}"
    if name == "__unixEpochNanoFrom":
        return str(_nanos(rng.start))
    if name == "__unixEpochNanoTo":
        return str(_nanos(rng.end))
    raise DashboardError(f"unknown macro {name!r}")


def _nanos(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


# --- 1. template variables ---------------------------------------------------------------------

# Grafana's variableRegex: $var | [[var:fmt]] | ${var.field:fmt}
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's current state, as Grafana holds it."""

    name: str
    value: str | tuple[str, ...]  # ALL_VALUE when "All" is selected
    options: tuple[str, ...] = ()  # every option's value (what "All" means without all_value)
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None  # custom all value, inserted verbatim


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(var: Variable, fmt: str | None) -> str:
    value: str | tuple[str, ...] = var.value
    if value == ALL_VALUE or value == (ALL_VALUE,):
        # a custom all value is inserted as written (Grafana skips formatting for it)
        if var.all_value is not None and fmt not in ("text", "percentencode", "queryparam"):
            return var.all_value
        value = var.options
    values = (value,) if isinstance(value, str) else tuple(value)
    if fmt is None:  # the PostgreSQL datasource's interpolateVariable
        if isinstance(value, str) and not (var.multi or var.include_all):
            return value.replace("'", "''")
        return ",".join(_quote(v) for v in values)
    if fmt == "sqlstring":
        return ",".join(_quote(v) for v in values)
    if fmt in ("csv", "text"):
        return ",".join(values)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise DashboardError(f"variable format {fmt!r} of ${var.name} is not supported here")


def interpolate_variables(
    sql: str, variables: Mapping[str, Variable], rng: TimeRange, interval_s: float
) -> str:
    """The frontend's templateSrv.replace: variables and built-ins; `$__macro(...)` names are
    not variables and stay for the macro engine."""
    builtins = {
        "__interval": format_interval(interval_s),
        "__interval_ms": str(round(interval_s * 1000)),
        "__from": str(int(rng.start.timestamp() * 1000)),
        "__to": str(int(rng.end.timestamp() * 1000)),
        "__range_s": str(int((rng.end - rng.start).total_seconds())),
    }

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in builtins:
            return builtins[name]
        var = variables.get(name)
        if var is None:
            if name.startswith("__"):
                return m.group(0)  # a macro or an unknown built-in: left as written
            raise DashboardError(f"unknown variable ${name}")
        return _format(var, fmt)

    return _VARIABLE.sub(one, sql)


def render(
    sql: str,
    variables: Mapping[str, Variable],
    rng: TimeRange,
    *,
    timescaledb: bool,
    max_points: int = 1000,
    min_interval_s: float = 10.0,
) -> str:
    """The SQL Grafana would send for `sql` under this time range and these variables."""
    interval = rng.interval_s(max_points, min_interval_s)
    return expand_macros(
        interpolate_variables(sql, variables, rng, interval), rng, interval, timescaledb
    )


# --- dashboards and their panels ---------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    """One target (query) of one panel."""

    dashboard: str  # dashboard uid
    panel_id: int
    title: str
    panel_type: str
    ref_id: str
    raw_sql: str
    format: str  # 'table' | 'time_series'
    datasource_uid: str | None
    expected_columns: tuple[str, ...] = ()  # columns the panel's config refers to by name
    max_points: int = 1000
    x_field: str | None = None  # a trend panel's numeric x (options.xField)

    @property
    def name(self) -> str:
        return f"{self.dashboard}/{self.title}/{self.ref_id}"


@dataclass(frozen=True)
class QueryVariable:
    """A dashboard variable whose options come from SQL."""

    dashboard: str
    name: str
    raw_sql: str
    multi: bool
    include_all: bool
    all_value: str | None
    datasource_uid: str | None


@dataclass
class Dashboard:
    path: Path
    model: dict[str, Any]
    queries: list[PanelQuery] = field(default_factory=list)
    variables: list[QueryVariable] = field(default_factory=list)

    @property
    def uid(self) -> str:
        return str(self.model["uid"])


def iter_panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def _expected_columns(panel: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        if matcher.get("id") == "byName" and matcher.get("options"):
            names.append(str(matcher["options"]))
    for transform in panel.get("transformations", []):
        if transform.get("id") == "organize":
            names.extend(transform.get("options", {}).get("indexByName", {}))
    return tuple(dict.fromkeys(names))


def _uid(ds: Any) -> str | None:
    return str(ds["uid"]) if isinstance(ds, Mapping) and "uid" in ds else None


def load_dashboard(path: Path) -> Dashboard:
    model = json.loads(path.read_text(encoding="utf-8"))
    dash = Dashboard(path, model)
    for panel in iter_panels(model.get("panels", [])):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []):
            raw = target.get("rawSql")
            if raw is None:
                continue
            dash.queries.append(
                PanelQuery(
                    dashboard=dash.uid,
                    panel_id=int(panel["id"]),
                    title=str(panel.get("title", "")),
                    panel_type=str(panel.get("type", "")),
                    ref_id=str(target.get("refId", "A")),
                    raw_sql=str(raw),
                    format=str(target.get("format", "time_series")),
                    datasource_uid=_uid(target.get("datasource") or panel.get("datasource")),
                    expected_columns=_expected_columns(panel),
                    max_points=int(panel.get("maxDataPoints", 1000)),
                    x_field=(panel.get("options") or {}).get("xField"),
                )
            )
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        raw = query.get("rawSql") if isinstance(query, Mapping) else query
        dash.variables.append(
            QueryVariable(
                dashboard=dash.uid,
                name=str(var["name"]),
                raw_sql=str(raw),
                multi=bool(var.get("multi")),
                include_all=bool(var.get("includeAll")),
                all_value=var.get("allValue") or None,
                datasource_uid=_uid(var.get("datasource")),
            )
        )
    return dash


def load_dashboards(folder: Path) -> list[Dashboard]:
    return [load_dashboard(p) for p in sorted(folder.glob("*.json"))]


def default_folder() -> Path:
    for base in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[4]):
        candidate = base / "grafana" / "dashboards"
        if candidate.is_dir():
            return candidate
    raise DashboardError("no grafana/dashboards folder found")


# --- what a panel's result must look like ------------------------------------------------------

NUMERIC_OIDS = frozenset(
    {20, 21, 23, 26, 700, 701, 1700}
)  # int8 int2 int4 oid float4 float8 numeric
TIME_OIDS = frozenset({1082, 1114, 1184})  # date timestamp timestamptz


def result_problems(query: PanelQuery, columns: Sequence[tuple[str, int]]) -> list[str]:
    """Why this result would not draw as the panel expects ([] when it would).

    `columns` are (name, type oid) as the database returned them.
    """
    names = [c[0] for c in columns]
    problems = [f"missing column {c!r}" for c in query.expected_columns if c not in names]
    value_cols = [(n, t) for n, t in columns if n not in ("time", "time_sec", "metric")]
    if query.format == "time_series":
        time_col = next((t for n, t in columns if n in ("time", "time_sec")), None)
        if time_col is None:
            problems.append("time_series format needs a column named time")
        elif time_col not in TIME_OIDS | NUMERIC_OIDS:
            problems.append(f"time column has type oid {time_col}, not a time or epoch")
        if not any(t in NUMERIC_OIDS for _, t in value_cols):
            problems.append("time_series format needs a numeric value column")
    numeric = any(t in NUMERIC_OIDS for _, t in value_cols)
    text_stat = query.panel_type == "stat" and bool(value_cols)  # a stat may show text
    needs_number = ("stat", "gauge", "bargauge", "histogram")
    if query.panel_type in needs_number and not numeric and not text_stat:
        problems.append(f"{query.panel_type} panel needs a numeric column")
    if query.panel_type == "trend":  # a numeric x (options.xField) and a numeric y
        x = dict(columns).get(query.x_field or "")
        if x not in NUMERIC_OIDS or sum(t in NUMERIC_OIDS for _, t in columns) < 2:
            problems.append(f"trend panel needs its numeric x {query.x_field!r} and a numeric y")
    return problems
