"""Generate grafana/dashboards/*.json (Trading, Scanners, System, Polymarket, Backtests) from the panel list below.

    uv run python scripts/gen_dashboards.py

The JSON files are what Grafana provisions; this script is how they are written, so panels stay
consistent (datasource uid, filters, units). tests/test_dashboards.py fails when the files differ
from what this script produces, and runs every panel's SQL against a seeded database.

Conventions for the SQL:
- Grafana's PostgreSQL macros for time: `$__timeFilter(col)`, `$__timeGroupAlias(col, $__interval)`.
- Multi-value filters: `$agent` / `$scanner` are include-All variables whose "All" is the literal
  '__all', so `('__all' IN ($agent) OR agent IN ($agent))` matches everything on "All" and
  keeps the index usable otherwise.
- Columns the panel's config refers to (overrides by name) are the columns the query returns;
  the test checks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantcore.store.control import leaderboard_sql

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "grafana" / "dashboards"
DS = {"type": "grafana-postgresql-datasource", "uid": "whalestack-db"}
REFRESH = "5s"

AGENT = "('__all' IN ($agent) OR t.agent IN ($agent))"
SCANNER = "('__all' IN ($scanner) OR coalesce(t.scanner, 'manual') IN ($scanner))"
# equity rows: the whole account on "All", else the selected agents
EQ_AGENT = "((e.agent = 'account' AND '__all' IN ($agent)) OR e.agent IN ($agent))"


@dataclass
class Col:
    """A column the panel formats (unit, display name, decimals): an override by name."""

    name: str
    unit: str | None = None
    display: str | None = None
    decimals: int | None = None
    color_by_sign: bool = False

    def override(self) -> dict[str, Any]:
        props: list[dict[str, Any]] = []
        if self.unit:
            props.append({"id": "unit", "value": self.unit})
        if self.display:
            props.append({"id": "displayName", "value": self.display})
        if self.decimals is not None:
            props.append({"id": "decimals", "value": self.decimals})
        if self.color_by_sign:
            props += [
                {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                {"id": "color", "value": {"mode": "thresholds"}},
                {
                    "id": "thresholds",
                    "value": {
                        "mode": "absolute",
                        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 0}],
                    },
                },
            ]
        return {"matcher": {"id": "byName", "options": self.name}, "properties": props}


@dataclass
class Panel:
    title: str
    kind: str  # timeseries | stat | table | barchart | bargauge
    sql: str | list[str]
    w: int = 12
    h: int = 8
    fmt: str = "table"  # table | time_series
    unit: str | None = None
    cols: list[Col] = field(default_factory=list)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    mappings: list[dict[str, Any]] = field(default_factory=list)


def _sql(text: str) -> str:
    lines = [ln.rstrip() for ln in text.strip("\n").splitlines()]
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines)


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    sqls = p.sql if isinstance(p.sql, list) else [p.sql]
    defaults: dict[str, Any] = {"custom": {}, "mappings": p.mappings, **p.defaults}
    if p.unit:
        defaults["unit"] = p.unit
    if p.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
        }
    if p.kind == "stat" and "thresholds" not in defaults:
        defaults["color"] = {"mode": "thresholds"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "red", "value": None}, {"color": "green", "value": 0}],
        }
    options: dict[str, Any] = dict(p.options)
    if p.kind == "stat":
        options.setdefault(
            "reduceOptions", {"calcs": ["lastNotNull"], "fields": "", "values": False}
        )
        options.setdefault("colorMode", "value")
        options.setdefault("textMode", "value_and_name")
        options.setdefault("graphMode", "none")
    if p.kind == "table":
        options.setdefault("showHeader", True)
        options.setdefault("cellHeight", "sm")
    if p.kind == "timeseries":
        options.setdefault(
            "legend", {"displayMode": "list", "placement": "bottom", "showLegend": True}
        )
        options.setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    return {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DS,
        "gridPos": {"h": p.h, "w": p.w, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": [c.override() for c in p.cols]},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "editorMode": "code",
                "format": p.fmt,
                "rawQuery": True,
                "rawSql": _sql(s),
            }
            for i, s in enumerate(sqls)
        ],
    }


def _variable(name: str, label: str, sql: str, multi: bool, include_all: bool) -> dict[str, Any]:
    var: dict[str, Any] = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "definition": _sql(sql),
        "query": _sql(sql),
        "refresh": 2,  # on time range change (and load)
        "multi": multi,
        "includeAll": include_all,
        "sort": 0,  # keep the query's order
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "options": [],
        "hide": 0,
    }
    if include_all:
        var["allValue"] = "'__all'"
    return var


def dashboard(
    uid: str,
    title: str,
    rows: list[list[Panel]],
    variables: list[dict[str, Any]],
    time_from: str,
    description: str,
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    pid = 1
    for row in rows:
        x = 0
        height = 0
        for p in row:
            panels.append(_panel(p, pid, x, y))
            pid += 1
            x += p.w
            height = max(height, p.h)
        y += height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["whalestack"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": REFRESH,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m", "15m"]},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["whalestack"],
                "asDropdown": False,
                "title": "Whale Stack",
                "includeVars": False,
                "keepTime": True,
            },
        ],
        "panels": panels,
    }


# The 5-minute rollups of 0009_dashboard_rollups.sql (continuous aggregates under TimescaleDB,
# trigger-kept tables on plain PostgreSQL) hold whole 5-minute buckets. A panel reads the rollup
# when $__interval is a whole number of buckets (every Grafana interval from 5m up: ranges of
# about 2.5 days and more), so each plotted interval sums / maxes whole buckets and the result
# equals the raw aggregate; shorter intervals read the raw table (a short range: the time index
# keeps it cheap). The condition is a constant once Grafana expands $__interval_ms, so the
# planner drops the branch not taken without touching its table.
ROLLUP_5M = "$__interval_ms % 300000 = 0"

PCT = "percent"
MODE_COLORS = [
    {
        "type": "value",
        "options": {
            "SIMULATED": {"text": "SIMULATED data · paper", "color": "blue", "index": 0},
            "PAPER": {"text": "PAPER trading", "color": "yellow", "index": 1},
            "TESTNET": {"text": "TESTNET", "color": "orange", "index": 2},
            "LIVE": {"text": "LIVE · real money", "color": "red", "index": 3},
        },
    }
]

# --- Trading ---------------------------------------------------------------------------------

TRADE_COLS = [
    Col("pnl_pct_margin", PCT, "PnL % (margin)", 2, color_by_sign=True),
    Col("pnl_pct_price", PCT, "PnL % (price)", 2, color_by_sign=True),
]

trading_rows: list[list[Panel]] = [
    [
        Panel(
            "Mode",
            "stat",
            """
            -- SIMULATED / PAPER / TESTNET / LIVE: from the freshest heartbeat, else the data
            WITH beat AS (
                SELECT info->>'data_source' AS data_source, info->>'trading_mode' AS trading_mode
                FROM service_heartbeats
                WHERE info->>'trading_mode' IS NOT NULL
                ORDER BY beat_at DESC LIMIT 1
            ), venue AS (
                SELECT venue FROM equity_snapshots ORDER BY time DESC LIMIT 1
            ), feed AS (
                SELECT source FROM market_snapshots ORDER BY time DESC LIMIT 1
            )
            SELECT CASE
                WHEN coalesce((SELECT trading_mode FROM beat), (SELECT venue FROM venue)) = 'live' THEN 'LIVE'
                WHEN coalesce((SELECT data_source FROM beat), (SELECT source FROM feed)) = 'sim' THEN 'SIMULATED'
                WHEN coalesce((SELECT trading_mode FROM beat), (SELECT venue FROM venue)) = 'testnet' THEN 'TESTNET'
                ELSE 'PAPER'
            END AS mode
            """,
            w=4,
            h=4,
            mappings=MODE_COLORS,
            cols=[Col("mode")],
            options={
                "textMode": "value",
                "colorMode": "background",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^mode$/", "values": False},
            },
            defaults={"color": {"mode": "fixed", "fixedColor": "blue"}},
            description="Where the numbers come from: simulated market, paper, testnet or live trading.",
        ),
        Panel(
            "Account PnL % (since start)",
            "stat",
            """
            SELECT pnl_pct_from_start AS pnl_pct
            FROM equity_snapshots
            WHERE agent = 'account'
            ORDER BY time DESC LIMIT 1
            """,
            w=4,
            h=4,
            unit=PCT,
            cols=[Col("pnl_pct", PCT, "since start", 2)],
            description="Whole account, from its start equity (latest equity snapshot).",
        ),
        Panel(
            "Account PnL % today",
            "stat",
            """
            WITH today AS (
                SELECT equity, time FROM equity_snapshots
                WHERE agent = 'account' AND time >= date_trunc('day', now())
            )
            SELECT ((SELECT equity FROM today ORDER BY time DESC LIMIT 1)
                    / nullif((SELECT equity FROM today ORDER BY time LIMIT 1), 0) - 1) * 100 AS pnl_pct_today
            """,
            w=4,
            h=4,
            unit=PCT,
            cols=[Col("pnl_pct_today", PCT, "today (UTC)", 2)],
        ),
        Panel(
            "PnL % in range",
            "stat",
            """
            -- per selected agent (the account on "All"): last vs first equity in the time range,
            -- two probes of the (agent, time) index per agent instead of a pass over the range
            WITH agents AS (
                SELECT DISTINCT a AS agent FROM unnest(ARRAY['account', $agent]::text[]) a
                WHERE (a = 'account' AND '__all' IN ($agent)) OR a IN ($agent)
            )
            SELECT g.agent AS metric, (l.equity / nullif(f.equity, 0) - 1) * 100 AS pnl_pct
            FROM agents g
            CROSS JOIN LATERAL (
                SELECT e.equity FROM equity_snapshots e
                WHERE e.agent = g.agent AND $__timeFilter(e.time) ORDER BY e.time LIMIT 1
            ) f
            CROSS JOIN LATERAL (
                SELECT e.equity FROM equity_snapshots e
                WHERE e.agent = g.agent AND $__timeFilter(e.time) ORDER BY e.time DESC LIMIT 1
            ) l
            ORDER BY 1
            """,
            w=4,
            h=4,
            unit=PCT,
            cols=[Col("pnl_pct", PCT, None, 2)],
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                "textMode": "value_and_name",
            },
        ),
        Panel(
            "Max drawdown % in range",
            "stat",
            f"""
            SELECT coalesce(max(dd), 0) AS max_drawdown_pct FROM (
                SELECT (1 - e.equity / nullif(max(e.equity) OVER (PARTITION BY e.agent ORDER BY e.time), 0)) * 100 AS dd
                FROM equity_snapshots e
                WHERE $__timeFilter(e.time) AND {EQ_AGENT}
            ) x
            """,
            w=4,
            h=4,
            unit=PCT,
            cols=[Col("max_drawdown_pct", PCT, "max drawdown", 2)],
            defaults={
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "orange", "value": 5},
                        {"color": "red", "value": 15},
                    ],
                },
            },
        ),
        Panel(
            "Open positions",
            "stat",
            f"""
            SELECT count(*) AS open_positions FROM trades t
            WHERE t.status = 'open' AND {AGENT} AND {SCANNER}
            """,
            w=4,
            h=4,
            cols=[Col("open_positions", "none", "open", 0)],
            defaults={"color": {"mode": "fixed", "fixedColor": "text"}},
        ),
    ],
    [
        Panel(
            "Closed trades in range: win rate, average win / loss %, R:R",
            "stat",
            f"""
            SELECT count(*) AS trades,
                   100.0 * count(*) FILTER (WHERE t.pnl_quote > 0) / nullif(count(*), 0) AS win_rate_pct,
                   avg(t.pnl_pct_margin) FILTER (WHERE t.pnl_quote > 0) AS avg_win_pct,
                   avg(t.pnl_pct_margin) FILTER (WHERE t.pnl_quote <= 0) AS avg_loss_pct,
                   avg(t.pnl_pct_margin) FILTER (WHERE t.pnl_quote > 0)
                     / nullif(abs(avg(t.pnl_pct_margin) FILTER (WHERE t.pnl_quote <= 0)), 0) AS reward_risk,
                   sum(t.pnl_quote) AS pnl_quote
            FROM trades t
            WHERE t.status = 'closed' AND $__timeFilter(t.closed_at) AND {AGENT} AND {SCANNER}
            """,
            w=24,
            h=4,
            cols=[
                Col("trades", "none", "trades", 0),
                Col("win_rate_pct", PCT, "win rate", 1),
                Col("avg_win_pct", PCT, "avg win (margin)", 2),
                Col("avg_loss_pct", PCT, "avg loss (margin)", 2),
                Col("reward_risk", "none", "R:R", 2),
                Col("pnl_quote", "currencyUSD", "realised PnL", 2),
            ],
            options={"textMode": "value_and_name", "colorMode": "value"},
            defaults={"color": {"mode": "fixed", "fixedColor": "text"}},
        ),
    ],
    [
        Panel(
            "Equity curve (% from start)",
            "timeseries",
            f"""
            SELECT $__timeGroupAlias(e.time, $__interval), e.agent AS metric,
                   (array_agg(e.pnl_pct_from_start ORDER BY e.time DESC))[1] AS pnl_pct
            FROM equity_snapshots e
            WHERE $__timeFilter(e.time) AND {EQ_AGENT}
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=16,
            h=9,
            fmt="time_series",
            unit=PCT,
        ),
        Panel(
            "Daily PnL %",
            "barchart",
            """
            SELECT to_char(day, 'YYYY-MM-DD') AS day,
                   (last_equity / nullif(coalesce(lag(last_equity) OVER (ORDER BY day), first_equity), 0) - 1) * 100 AS pnl_pct
            FROM (
                SELECT date_trunc('day', time) AS day,
                       (array_agg(equity ORDER BY time))[1] AS first_equity,
                       (array_agg(equity ORDER BY time DESC))[1] AS last_equity
                FROM equity_snapshots
                WHERE agent = 'account' AND $__timeFilter(time)
                GROUP BY 1
            ) d
            ORDER BY day
            """,
            w=8,
            h=9,
            unit=PCT,
            cols=[Col("day"), Col("pnl_pct", PCT, "PnL %", 2)],
            options={
                "xField": "day",
                "colorByField": "pnl_pct",
                "showValue": "auto",
                "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
            },
            defaults={
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 0}],
                },
            },
            description="Whole account, day by day (UTC): last equity of the day vs the day before.",
        ),
    ],
    [
        Panel(
            "Open positions with unrealised PnL %",
            "table",
            f"""
            SELECT t.symbol, t.direction, t.agent, coalesce(t.scanner, 'manual') AS scanner, t.scanner_version,
                   t.venue, t.leverage, t.entry_price, m.price AS mark_price, t.stop_loss, t.take_profit,
                   (m.price / nullif(t.entry_price, 0) - 1) * 100
                       * CASE WHEN t.direction = 'long' THEN 1 ELSE -1 END AS upnl_pct_price,
                   (m.price / nullif(t.entry_price, 0) - 1) * 100 * coalesce(t.leverage, 1)
                       * CASE WHEN t.direction = 'long' THEN 1 ELSE -1 END AS upnl_pct_margin,
                   t.opened_at
            FROM trades t
            LEFT JOIN LATERAL (
                SELECT price FROM market_snapshots s WHERE s.symbol = t.symbol ORDER BY s.time DESC LIMIT 1
            ) m ON true
            WHERE t.status = 'open' AND {AGENT} AND {SCANNER}
            ORDER BY t.opened_at DESC
            """,
            w=24,
            h=8,
            cols=[
                Col("upnl_pct_price", PCT, "uPnL % (price)", 2, color_by_sign=True),
                Col("upnl_pct_margin", PCT, "uPnL % (margin)", 2, color_by_sign=True),
                Col("opened_at", "dateTimeAsIso", "opened"),
            ],
        ),
    ],
    [
        Panel(
            "Recently closed trades",
            "table",
            f"""
            SELECT t.closed_at, t.symbol, t.direction, t.agent, coalesce(t.scanner, 'manual') AS scanner,
                   t.scanner_version, t.venue, t.entry_price, t.exit_price, t.close_reason,
                   t.pnl_pct_price, t.pnl_pct_margin, t.pnl_quote,
                   extract(epoch FROM t.closed_at - t.opened_at) AS held_s
            FROM trades t
            WHERE t.status = 'closed' AND $__timeFilter(t.closed_at) AND {AGENT} AND {SCANNER}
            ORDER BY t.closed_at DESC
            LIMIT 200
            """,
            w=24,
            h=9,
            cols=[
                *TRADE_COLS,
                Col("pnl_quote", "currencyUSD", "PnL", 2, color_by_sign=True),
                Col("held_s", "s", "held"),
                Col("closed_at", "dateTimeAsIso", "closed"),
            ],
        ),
    ],
    [
        Panel(
            "PnL % by agent and scanner (closed in range)",
            "table",
            f"""
            SELECT t.agent, coalesce(t.scanner, 'manual') AS scanner, t.scanner_version,
                   count(*) AS trades,
                   100.0 * count(*) FILTER (WHERE t.pnl_quote > 0) / nullif(count(*), 0) AS win_rate_pct,
                   sum(t.pnl_pct_margin) AS pnl_pct_margin,
                   sum(t.pnl_quote) AS pnl_quote
            FROM trades t
            WHERE t.status = 'closed' AND $__timeFilter(t.closed_at) AND {AGENT} AND {SCANNER}
            GROUP BY 1, 2, 3
            ORDER BY pnl_pct_margin DESC NULLS LAST
            """,
            w=12,
            h=8,
            cols=[
                Col("win_rate_pct", PCT, "win rate", 1),
                Col("pnl_pct_margin", PCT, "sum PnL % (margin)", 2, color_by_sign=True),
                Col("pnl_quote", "currencyUSD", "PnL", 2, color_by_sign=True),
            ],
        ),
        Panel(
            "Stop moves (trailing ladder)",
            "table",
            f"""
            SELECT p.time, p.symbol, t.direction, p.ladder_step, p.old_stop, p.new_stop, p.price,
                   p.profit_pct, p.profit_basis, t.agent, coalesce(t.scanner, 'manual') AS scanner
            FROM position_monitor_logs p
            JOIN trades t ON t.trade_id = p.trade_id
            WHERE p.action = 'stop_moved' AND $__timeFilter(p.time) AND {AGENT} AND {SCANNER}
            ORDER BY p.time DESC
            LIMIT 200
            """,
            w=12,
            h=8,
            cols=[Col("profit_pct", PCT, "profit %", 2), Col("time", "dateTimeAsIso", "moved")],
        ),
    ],
    [
        Panel(
            "Recent orders",
            "table",
            """
            SELECT o.created_at, o.symbol, o.side, o.order_type, o.qty, o.price, o.status,
                   o.filled_qty, o.avg_fill_price, o.fee, o.reject_reason, o.venue, o.agent, o.order_link_id
            FROM orders o
            WHERE $__timeFilter(o.created_at) AND ('__all' IN ($agent) OR o.agent IN ($agent))
            ORDER BY o.created_at DESC
            LIMIT 200
            """,
            w=24,
            h=8,
            cols=[Col("created_at", "dateTimeAsIso", "created")],
        ),
    ],
]

trading_vars = [
    _variable(
        "agent", "Agent", "SELECT agent FROM trades GROUP BY agent ORDER BY agent", True, True
    ),
    _variable(
        "scanner",
        "Scanner",
        "SELECT coalesce(scanner, 'manual') FROM trades GROUP BY 1 ORDER BY 1",
        True,
        True,
    ),
]

# --- Scanners --------------------------------------------------------------------------------

LATEST_CYCLE = "(SELECT max(time) FROM coin_rankings)"
scanner_rows: list[list[Panel]] = [
    [
        Panel(
            "Top 10 now",
            "table",
            f"""
            SELECT r.rank, r.symbol, r.direction, r.score, r.imbalance, r.cluster_size_pct,
                   r.success_rate, r.price, r.target_price,
                   (r.target_price / nullif(r.price, 0) - 1) * 100 AS target_distance_pct,
                   r.heatmap_source, r.scanner_version, r.time
            FROM coin_rankings r
            WHERE r.time = {LATEST_CYCLE}
            ORDER BY r.rank
            """,
            w=12,
            h=10,
            cols=[
                Col("score", "none", "score", 1),
                Col("imbalance", "percentunit", "imbalance (shorts above)", 1),
                Col("cluster_size_pct", PCT, "cluster % of typical", 0),
                Col("success_rate", "percentunit", "success rate", 0),
                Col("target_distance_pct", PCT, "to target", 2),
                Col("time", "dateTimeAsIso", "cycle"),
            ],
        ),
        Panel(
            "Rank over time of the current top 10",
            "timeseries",
            f"""
            SELECT $__timeGroupAlias(r.time, $__interval),
                   r.symbol || ' · ' || coalesce(r.heatmap_source, '?') AS metric, min(r.rank) AS rank
            FROM coin_rankings r
            WHERE $__timeFilter(r.time)
              AND r.symbol IN (SELECT symbol FROM coin_rankings WHERE time = {LATEST_CYCLE})
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=12,
            h=10,
            fmt="time_series",
            defaults={"min": 1, "max": 10, "decimals": 0},
            description="The coins of the latest top 10 and the rank each held before (1 = top), "
            "per heatmap source (coinglass | model | sim).",
        ),
    ],
    [
        Panel(
            "Most often in the top 10 (range)",
            "bargauge",
            """
            SELECT symbol || ' · ' || coalesce(heatmap_source, '?') AS symbol, count(*) AS cycles,
                   min(rank) AS best_rank
            FROM coin_rankings
            WHERE $__timeFilter(time)
            GROUP BY 1
            ORDER BY cycles DESC
            LIMIT 15
            """,
            w=8,
            h=10,
            cols=[Col("symbol"), Col("cycles", "none", "cycles in top 10", 0)],
            options={
                "displayMode": "gradient",
                "orientation": "horizontal",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^cycles$/", "values": True},
            },
        ),
        Panel(
            "Fast price movers",
            "table",
            """
            SELECT m.time, m.symbol, m.mode, m.direction, m.price_change_1m_pct, m.price_change_5m_pct,
                   m.trigger_window, m.zscore_1m, m.zscore_5m, m.refresh_requested, m.scanner_version
            FROM fast_price_movers m
            WHERE $__timeFilter(m.time)
            ORDER BY m.time DESC
            LIMIT 100
            """,
            w=16,
            h=10,
            cols=[
                Col("price_change_1m_pct", PCT, "1m %", 2, color_by_sign=True),
                Col("price_change_5m_pct", PCT, "5m %", 2, color_by_sign=True),
                Col("time", "dateTimeAsIso", "scan"),
            ],
        ),
    ],
    [
        Panel(
            "Movers and spikes per interval",
            "timeseries",
            [
                f"""
                SELECT $__timeGroupAlias(bucket, $__interval), 'movers ' || coalesce(direction, '?') AS metric,
                       sum(movers)::bigint AS n
                FROM fast_price_movers_5m
                WHERE {ROLLUP_5M} AND $__timeFilter(bucket)
                GROUP BY 1, 2
                UNION ALL
                SELECT $__timeGroupAlias(time, $__interval), 'movers ' || coalesce(direction, '?'), count(*)
                FROM fast_price_movers
                WHERE NOT {ROLLUP_5M} AND $__timeFilter(time)
                GROUP BY 1, 2
                ORDER BY 1
                """,
                f"""
                SELECT $__timeGroupAlias(bucket, $__interval),
                       CASE WHEN is_oi_spike AND is_volume_spike THEN 'OI + volume spikes'
                            WHEN is_oi_spike THEN 'OI spikes' ELSE 'volume spikes' END AS metric,
                       sum(spikes)::bigint AS n
                FROM oi_volume_spikes_5m
                WHERE {ROLLUP_5M} AND $__timeFilter(bucket)
                GROUP BY 1, 2
                UNION ALL
                SELECT $__timeGroupAlias(time, $__interval),
                       CASE WHEN is_oi_spike AND is_volume_spike THEN 'OI + volume spikes'
                            WHEN is_oi_spike THEN 'OI spikes' ELSE 'volume spikes' END,
                       count(*)
                FROM oi_volume_spikes
                WHERE NOT {ROLLUP_5M} AND $__timeFilter(time)
                GROUP BY 1, 2
                ORDER BY 1
                """,
            ],
            w=8,
            h=9,
            fmt="time_series",
            defaults={
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
            },
        ),
        Panel(
            "OI / volume spikes",
            "table",
            """
            SELECT s.time, s.symbol, s.mode, s.oi_change_15m_pct, s.volume_ratio, s.price_change_5m_pct,
                   s.is_oi_spike, s.is_volume_spike, s.oi_zscore, s.volume_zscore, s.refresh_requested,
                   s.scanner_version
            FROM oi_volume_spikes s
            WHERE $__timeFilter(s.time)
            ORDER BY s.time DESC
            LIMIT 100
            """,
            w=16,
            h=9,
            cols=[
                Col("oi_change_15m_pct", PCT, "OI 15m %", 2, color_by_sign=True),
                Col("volume_ratio", "x", "volume × 1h avg", 2),
                Col("price_change_5m_pct", PCT, "price 5m %", 2, color_by_sign=True),
                Col("time", "dateTimeAsIso", "scan"),
            ],
        ),
    ],
    [
        Panel(
            "$coin: price vs target clusters",
            "timeseries",
            [
                """
                SELECT $__timeGroupAlias(time, $__interval), 'price' AS metric, avg(close) AS price
                FROM ohlcv
                WHERE symbol = '$coin' AND interval = '1m' AND $__timeFilter(time)
                GROUP BY 1, 2
                ORDER BY 1
                """,
                """
                SELECT $__timeGroupAlias(time, $__interval),
                       'target ' || timeframe || ' (' || side || ', ' || coalesce(heatmap_source, '?') || ')' AS metric,
                       avg((price_low + price_high) / 2) AS price
                FROM cluster_targets
                WHERE symbol = '$coin' AND $__timeFilter(time)
                GROUP BY 1, 2
                ORDER BY 1
                """,
            ],
            w=14,
            h=10,
            fmt="time_series",
            description="1-min closes of the chosen coin and the centre of each timeframe's target "
            "cluster (sampled hourly by the cluster scanner).",
        ),
        Panel(
            "$coin: clusters of the latest scan",
            "table",
            """
            SELECT c.timeframe, c.side, c.price_low, c.price_high, c.center, c.value_usd, c.level_count,
                   c.distance_pct, c.size_pct_of_typical, c.ref_price, c.heatmap_source, c.time
            FROM liquidation_clusters c
            WHERE c.symbol = '$coin'
              AND c.time = (SELECT max(time) FROM liquidation_clusters WHERE symbol = '$coin')
            ORDER BY c.value_usd DESC
            LIMIT 100
            """,
            w=10,
            h=10,
            cols=[
                Col("value_usd", "currencyUSD", "value", 0),
                Col("distance_pct", PCT, "distance", 2, color_by_sign=True),
                Col("size_pct_of_typical", PCT, "% of typical", 0),
                Col("time", "dateTimeAsIso", "scan"),
            ],
        ),
    ],
    [
        Panel(
            "$coin: cluster success per timeframe",
            "table",
            """
            SELECT timeframe, success_rate, samples, wins, losses, avg_time_to_target_s,
                   max_wick_up_pct, max_wick_down_pct, updated_at
            FROM coin_liquidation_patterns
            WHERE symbol = '$coin'
            ORDER BY array_position(ARRAY['12h','24h','3d','7d','14d','30d','90d','180d','1y'], timeframe)
            """,
            w=10,
            h=8,
            cols=[
                Col("success_rate", "percentunit", "success rate", 0),
                Col("avg_time_to_target_s", "s", "time to target"),
            ],
        ),
        Panel(
            "Scanner leaderboard (closed trades in range)",
            "table",
            # the one leaderboard (Telegram /scanners and `quant scanners` run the same SQL)
            leaderboard_sql("$__timeFrom()::timestamptz", "$__timeTo()::timestamptz", "100"),
            w=14,
            h=8,
            cols=[
                Col("win_rate_pct", PCT, "win rate", 1),
                Col("pnl_pct_margin", PCT, "sum PnL % (margin)", 2, color_by_sign=True),
                Col("avg_pnl_pct", PCT, "avg PnL % (price)", 2),
                Col("avg_win_pct", PCT, "avg win", 2),
                Col("avg_loss_pct", PCT, "avg loss", 2),
                Col("reward_risk", "none", "R:R", 2),
                Col("pnl_quote", "currencyUSD", "PnL", 2, color_by_sign=True),
                Col("bt_out_of_sample", None, "backtest out of sample"),
                Col("bt_pnl_pct", PCT, "backtest PnL %", 2, color_by_sign=True),
                Col("bt_win_rate_pct", PCT, "backtest win rate", 1),
                Col("bt_profit_factor", "none", "backtest PF", 2),
                Col("bt_sharpe", "none", "backtest Sharpe", 2),
                Col("bt_trades", "none", "backtest trades", 0),
                Col("bt_days", "none", "backtest days", 1),
                Col("bt_at", "dateTimeAsIso", "backtest run at"),
            ],
            description="Live / paper signals and closed trades in the range, beside the "
            "strategy's headline backtest (its latest walk-forward out-of-sample result, else its "
            "latest single run; matched on name and code version). A backtested strategy with no "
            "live record yet has a row of its own.",
        ),
    ],
    [
        Panel(
            "Signals per scanner",
            "timeseries",
            """
            SELECT $__timeGroupAlias(time, $__interval),
                   scanner || ' ' || scanner_version || ' · ' || coalesce(heatmap_source, '?') AS metric,
                   count(*) AS signals
            FROM signals
            WHERE $__timeFilter(time)
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=24,
            h=7,
            fmt="time_series",
            defaults={
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
            },
        ),
    ],
]

# --- Scanners: heatmap hit rate per source (issue 14) ------------------------------------------
# The liquidation collector scores every heatmap source against the liquidations recorded after
# its heatmaps (quantcore.estimate.hit_rate → heatmap_hit_rates).
scanner_rows.append(
    [
        Panel(
            "Heatmap hit rate vs recorded liquidations, per source",
            "timeseries",
            """
            SELECT $__timeGroupAlias(time, $__interval), heatmap_source || ' precision' AS metric,
                   avg(precision_pct) AS pct
            FROM heatmap_hit_rates
            WHERE $__timeFilter(time) AND precision_pct IS NOT NULL
            GROUP BY 1, 2
            UNION ALL
            SELECT $__timeGroupAlias(time, $__interval), heatmap_source || ' recall', avg(recall_pct)
            FROM heatmap_hit_rates
            WHERE $__timeFilter(time) AND recall_pct IS NOT NULL
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=14,
            h=8,
            fmt="time_series",
            unit="percent",
            defaults={"min": 0, "max": 100},
            description="Top clusters of each source's 1y heatmaps scored against the liquidations "
            "recorded since: precision = share of the clusters price reached that saw liquidations "
            "within ±1 % in the window; recall = share of the liquidated value within ±1 % of a "
            "predicted cluster (coinglass | model | sim).",
        ),
        Panel(
            "Heatmap hit rate: latest per source",
            "table",
            """
            SELECT DISTINCT ON (heatmap_source) heatmap_source, precision_pct, recall_pct, hit, reached,
                   clusters, coins, liq_value_usd, window_min, tol_pct, time
            FROM heatmap_hit_rates
            ORDER BY heatmap_source, time DESC
            """,
            w=10,
            h=8,
            cols=[
                Col("precision_pct", PCT, "precision", 1),
                Col("recall_pct", PCT, "recall", 1),
                Col("liq_value_usd", "currencyUSD", "liquidated", 0),
                Col("window_min", "m", "window"),
                Col("time", "dateTimeAsIso", "scored"),
            ],
        ),
    ]
)

scanner_vars = [
    _variable(
        "coin",
        "Coin",
        f"""
        -- the latest top 10 first (best rank first), then every coin with heatmaps
        SELECT symbol FROM (
            SELECT symbol, 0 AS k, rank FROM coin_rankings WHERE time = {LATEST_CYCLE}
            UNION ALL
            SELECT DISTINCT symbol, 1, 0 FROM liquidation_refreshes
        ) x
        GROUP BY symbol
        ORDER BY min(k), min(rank), symbol
        """,
        False,
        False,
    )
]

# --- System ----------------------------------------------------------------------------------

LATEST_STREAMS = "(SELECT max(time) FROM stream_stats)"
system_rows: list[list[Panel]] = [
    [
        Panel(
            "Services alive",
            "stat",
            """
            SELECT count(*) FILTER (WHERE status IN ('starting', 'ok', 'degraded')
                                      AND beat_at > now() - interval '30 seconds') AS alive,
                   count(*) FILTER (WHERE status IN ('starting', 'ok', 'degraded')
                                      AND beat_at <= now() - interval '30 seconds') AS stale
            FROM service_heartbeats
            """,
            w=6,
            h=4,
            cols=[Col("alive", "none", "alive", 0), Col("stale", "none", "stale", 0)],
            defaults={
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
        ),
        Panel(
            "Dead letters",
            "stat",
            f"""
            SELECT coalesce(sum(length), 0) AS dead_letters
            FROM stream_stats
            WHERE stream = 'deadletter' AND consumer_group = '' AND time = {LATEST_STREAMS}
            """,
            w=6,
            h=4,
            cols=[Col("dead_letters", "none", "dead letters", 0)],
            defaults={
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                },
            },
        ),
        Panel(
            "Broadcasts in range",
            "stat",
            """
            SELECT count(*) FILTER (WHERE status = 'sent') AS sent,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'rate_limited') AS rate_limited,
                   count(*) FILTER (WHERE status = 'digested') AS digested
            FROM broadcasts
            WHERE $__timeFilter(time)
            """,
            w=6,
            h=4,
            cols=[
                Col("sent", "none", "sent", 0),
                Col("failed", "none", "failed", 0),
                Col("rate_limited", "none", "rate limited", 0),
                Col("digested", "none", "digested", 0),
            ],
            defaults={"color": {"mode": "fixed", "fixedColor": "text"}},
        ),
        Panel(
            "Errors in range",
            "stat",
            """
            SELECT count(*) FILTER (WHERE level IN ('error', 'critical')) AS errors,
                   count(*) FILTER (WHERE level = 'warning') AS warnings
            FROM agent_logs
            WHERE level IN ('warning', 'error', 'critical') AND $__timeFilter(time)
            """,
            w=6,
            h=4,
            cols=[Col("errors", "none", "errors", 0), Col("warnings", "none", "warnings", 0)],
            defaults={
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}],
                },
            },
        ),
    ],
    [
        Panel(
            "Service heartbeats",
            "table",
            """
            SELECT service, instance, status, version,
                   extract(epoch FROM now() - beat_at) AS beat_age_s,
                   extract(epoch FROM now() - started_at) AS up_s,
                   info->>'data_source' AS data_source, info->>'trading_mode' AS trading_mode,
                   coalesce(info->>'cycle_s', info->>'last_cycle_s') AS cycle_s,
                   host, pid, beat_at
            FROM service_heartbeats
            ORDER BY service, instance
            """,
            w=14,
            h=9,
            cols=[
                Col("beat_age_s", "s", "last beat", 1),
                Col("up_s", "s", "up"),
                Col("beat_at", "dateTimeAsIso", "beat at"),
            ],
        ),
        Panel(
            "Data freshness per source",
            "table",
            """
            SELECT feed, source, newest, oldest, items,
                   extract(epoch FROM now() - newest) AS age_s,
                   extract(epoch FROM now() - oldest) AS stalest_age_s
            FROM (
                (SELECT 'market snapshots' AS feed, source, time AS newest, time AS oldest, NULL::bigint AS items
                 FROM market_snapshots ORDER BY time DESC LIMIT 1)
                UNION ALL
                (SELECT 'candles', source, time, time, NULL FROM ohlcv ORDER BY time DESC LIMIT 1)
                UNION ALL
                (SELECT 'liquidation events', source, time, time, NULL
                 FROM liquidation_events ORDER BY time DESC LIMIT 1)
                UNION ALL
                SELECT 'heatmaps', source, max(refreshed_at), min(refreshed_at), count(*)
                FROM liquidation_refreshes GROUP BY source
            ) f
            ORDER BY feed, source
            """,
            w=10,
            h=9,
            cols=[
                Col("age_s", "s", "age", 0),
                Col("stalest_age_s", "s", "stalest", 0),
                Col("newest", "dateTimeAsIso", "newest"),
                Col("oldest", "dateTimeAsIso", "oldest"),
            ],
        ),
    ],
    [
        Panel(
            "Stream backlogs now",
            "table",
            f"""
            SELECT stream, consumer_group, length, consumers, pending, lag, time
            FROM stream_stats
            WHERE time = {LATEST_STREAMS}
            ORDER BY stream, consumer_group
            """,
            w=10,
            h=9,
            cols=[Col("time", "dateTimeAsIso", "sampled")],
        ),
        Panel(
            "Stream backlog (pending + lag) and dead letters",
            "timeseries",
            f"""
            SELECT $__timeGroupAlias(bucket, $__interval),
                   CASE WHEN stream = 'deadletter' THEN 'dead letters'
                        ELSE stream || ' / ' || consumer_group END AS metric,
                   max(CASE WHEN stream = 'deadletter' THEN max_length ELSE max_backlog END) AS backlog
            FROM stream_stats_5m
            WHERE {ROLLUP_5M} AND $__timeFilter(bucket) AND (consumer_group <> '' OR stream = 'deadletter')
            GROUP BY 1, 2
            UNION ALL
            SELECT $__timeGroupAlias(time, $__interval),
                   CASE WHEN stream = 'deadletter' THEN 'dead letters'
                        ELSE stream || ' / ' || consumer_group END,
                   max(CASE WHEN stream = 'deadletter' THEN length
                            ELSE coalesce(pending, 0) + coalesce(lag, 0) END)
            FROM stream_stats
            WHERE NOT {ROLLUP_5M} AND $__timeFilter(time) AND (consumer_group <> '' OR stream = 'deadletter')
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=14,
            h=9,
            fmt="time_series",
        ),
    ],
    [
        Panel(
            "Broadcasts per interval",
            "timeseries",
            """
            SELECT $__timeGroupAlias(time, $__interval), channel || ' ' || status AS metric, count(*) AS n
            FROM broadcasts
            WHERE $__timeFilter(time)
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=12,
            h=8,
            fmt="time_series",
            defaults={
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
            },
        ),
        Panel(
            "Failed broadcasts",
            "table",
            """
            SELECT time, channel, event_type, status, attempts, error, agent
            FROM broadcasts
            WHERE status IN ('failed', 'rate_limited') AND $__timeFilter(time)
            ORDER BY time DESC
            LIMIT 100
            """,
            w=12,
            h=8,
            cols=[Col("time", "dateTimeAsIso", "time")],
        ),
    ],
    [
        Panel(
            "Errors and warnings per interval",
            "timeseries",
            """
            SELECT $__timeGroupAlias(time, $__interval), service || ' ' || level AS metric, count(*) AS n
            FROM agent_logs
            WHERE level IN ('warning', 'error', 'critical') AND $__timeFilter(time)
            GROUP BY 1, 2
            ORDER BY 1
            """,
            w=10,
            h=9,
            fmt="time_series",
            defaults={
                "custom": {"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}}
            },
        ),
        Panel(
            "Recent errors and warnings (agent_logs)",
            "table",
            """
            SELECT time, level, service, agent, event_type, message, symbol, correlation_id
            FROM agent_logs
            WHERE level IN ('warning', 'error', 'critical') AND $__timeFilter(time)
            ORDER BY time DESC
            LIMIT 200
            """,
            w=14,
            h=9,
            cols=[Col("time", "dateTimeAsIso", "time"), Col("message")],
        ),
    ],
]

# --- Polymarket ------------------------------------------------------------------------------

LATEST_SCORES = "(SELECT max(time) FROM poly_wallet_scores)"
LATEST_CLUSTERS = "(SELECT max(time) FROM poly_clusters)"

poly_rows: list[list[Panel]] = [
    [
        Panel(
            "Smart wallets",
            "table",
            f"""
            SELECT s.wallet, s.score, s.roi * 100 AS roi_pct, s.shrunk_roi * 100 AS shrunk_roi_pct,
                   s.closed_positions, s.win_streak, s.early_share * 100 AS early_pct,
                   (SELECT c.cluster_id FROM poly_cluster_members c
                    WHERE c.wallet = s.wallet AND c.time = {LATEST_CLUSTERS} LIMIT 1) AS cluster_id
            FROM poly_wallet_scores s
            WHERE s.time = {LATEST_SCORES} AND s.is_smart
            ORDER BY s.score DESC
            LIMIT 50
            """,
            w=16,
            h=10,
            description="Latest hunter scan: smart wallets (30-day realised ROI over a minimum "
            "sample, not bots or market makers), best shrunk score first.",
            cols=[
                Col("roi_pct", PCT, "ROI %", 1, color_by_sign=True),
                Col("shrunk_roi_pct", PCT, "shrunk ROI %", 1, color_by_sign=True),
                Col("early_pct", PCT, "early entries %", 0),
                Col("score", "none", "score", 3),
            ],
        ),
        Panel(
            "Wallets by label",
            "bargauge",
            f"""
            SELECT label, count(*) AS wallets FROM poly_wallet_scores
            WHERE time = {LATEST_SCORES} GROUP BY label ORDER BY label
            """,
            w=8,
            h=10,
            description="smart / ordinary / unproven (too few closed positions) / bot / "
            "market_maker (cannot be copied).",
        ),
    ],
    [
        Panel(
            "Poly signals",
            "table",
            """
            SELECT time, question, outcome, market_price, implied_prob, edge * 100 AS edge_pts,
                   criteria_met, criteria_total, suggested_size_usd,
                   array_to_string(ARRAY(SELECT key FROM jsonb_each(checklist)
                                         WHERE (value ->> 'ok')::boolean ORDER BY key), ', ') AS passed,
                   cardinality(smart_wallets) AS smart_wallets, cluster_id
            FROM poly_signals
            WHERE $__timeFilter(time)
            ORDER BY time DESC
            LIMIT 100
            """,
            w=24,
            h=9,
            description="Signal oracle: edge = smart wallets' implied probability − ask − fee; "
            "passed = the checklist criteria that held.",
            cols=[
                Col("edge_pts", "none", "edge (points)", 1, color_by_sign=True),
                Col("suggested_size_usd", "currencyUSD", "size", 0),
            ],
        ),
    ],
    [
        Panel(
            "Hybrid signals",
            "table",
            """
            SELECT h.time, h.symbol, array_to_string(h.reasons, ', ') AS reasons, h.perp_rank,
                   s.question, s.outcome, s.edge * 100 AS edge_pts
            FROM hybrid_signals h
            JOIN poly_signals s ON s.condition_id = h.condition_id AND s.token_id = h.token_id
                               AND s.time = h.poly_signal_time
            WHERE $__timeFilter(h.time)
            ORDER BY h.time DESC
            LIMIT 50
            """,
            w=12,
            h=8,
            description="Poly signals whose linked perp spiked (OI / volume) or ranks top 10.",
        ),
        Panel(
            "Sync clusters",
            "table",
            f"""
            SELECT cluster_id, size, density, cardinality(markets) AS markets,
                   array_to_string(members, ', ') AS members
            FROM poly_clusters
            WHERE time = {LATEST_CLUSTERS}
            ORDER BY size DESC, density DESC
            LIMIT 30
            """,
            w=12,
            h=8,
            description="Wallets that repeatedly trade the same outcome within minutes "
            "(graph density above the setting).",
        ),
    ],
    [
        Panel(
            "Polymarket data freshness",
            "table",
            """
            SELECT 'trades' AS data, max(time) AS latest, extract(epoch FROM now() - max(time)) AS age_s FROM poly_trades
            UNION ALL SELECT 'books', max(time), extract(epoch FROM now() - max(time)) FROM poly_prices
            UNION ALL SELECT 'markets', max(updated_at), extract(epoch FROM now() - max(updated_at)) FROM poly_markets
            UNION ALL SELECT 'wallet histories', max(history_synced_at),
                             extract(epoch FROM now() - max(history_synced_at)) FROM poly_wallets
            UNION ALL SELECT 'wallet scores', max(time), extract(epoch FROM now() - max(time)) FROM poly_wallet_scores
            """,
            w=24,
            h=7,
            cols=[Col("age_s", "s", "age", 0)],
        ),
    ],
]


# --- Backtests (issue 13; `quant backtest` writes backtest_runs / _trades / _equity) ----------


def backtests_dashboard() -> dict[str, Any]:
    """Runs, the selected run's equity / drawdown / trades, and each strategy's headline (its
    latest walk-forward out-of-sample result, else its latest single run: backtest_headline).
    A run's curve is drawn against days since its window start (trend panels), so a backtest
    of any period shows whatever the dashboard's time range; the range picks the runs listed."""
    run = "'$run'"
    line = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
            "spanNulls": True}  # fmt: skip
    rows: list[list[Panel]] = [
        [
            Panel(
                "Selected run",
                "stat",
                f"""
                SELECT pnl_pct, win_rate_pct, profit_factor, sharpe, max_drawdown_pct, trades,
                       trades_per_day, fees_pct
                FROM backtest_runs
                WHERE run_id = {run}
                """,
                w=24,
                h=4,
                cols=[
                    Col("pnl_pct", PCT, "PnL %", 2),
                    Col("win_rate_pct", PCT, "win rate", 1),
                    Col("profit_factor", "none", "profit factor", 2),
                    Col("sharpe", "none", "Sharpe", 2),
                    Col("max_drawdown_pct", PCT, "max drawdown", 2),
                    Col("trades", "none", "trades", 0),
                    Col("trades_per_day", "none", "trades / day", 1),
                    Col("fees_pct", PCT, "fees", 2),
                ],
                options={"textMode": "value_and_name", "colorMode": "none"},
            ),
        ],
        [
            Panel(
                "Equity of the selected run (% from start)",
                "trend",
                f"""
                SELECT days, equity_pct
                FROM backtest_equity
                WHERE run_id = {run}
                ORDER BY seq
                """,
                w=12,
                h=9,
                unit=PCT,
                cols=[Col("days", "none", "days since the window start", 1)],
                defaults={"custom": line},
                options={"xField": "days"},
                description="The portfolio's equity (coins equal-weight), thinned to at most "
                "500 points; x: days since the run's window start.",
            ),
            Panel(
                "Drawdown of the selected run",
                "trend",
                f"""
                SELECT days, -drawdown_pct AS drawdown_pct
                FROM backtest_equity
                WHERE run_id = {run}
                ORDER BY seq
                """,
                w=12,
                h=9,
                unit=PCT,
                cols=[Col("days", "none", "days since the window start", 1)],
                defaults={
                    "custom": {**line, "fillOpacity": 40},
                    "color": {"mode": "fixed", "fixedColor": "red"},
                },
                options={"xField": "days"},
                description="Below the running peak, % (each point the deepest of its bucket).",
            ),
        ],
        [
            Panel(
                "Trade distribution of the selected run (PnL % per trade)",
                "histogram",
                f"""
                SELECT pnl_pct
                FROM backtest_trades
                WHERE run_id = {run}
                """,
                w=12,
                h=8,
                unit=PCT,
                options={"combine": False, "legend": {"showLegend": False}},
                description="Each trade's change of its coin's equity after fees and funding.",
            ),
            Panel(
                "Trades of the selected run by exit",
                "table",
                f"""
                SELECT exit_reason, side, count(*) AS trades,
                       100.0 * count(*) FILTER (WHERE pnl_pct > 0) / count(*) AS win_rate_pct,
                       avg(pnl_pct) AS avg_pnl_pct, sum(fees_pct) AS fees_pct
                FROM backtest_trades
                WHERE run_id = {run}
                GROUP BY 1, 2
                ORDER BY 3 DESC
                """,
                w=12,
                h=8,
                cols=[
                    Col("win_rate_pct", PCT, "win rate", 1),
                    Col("avg_pnl_pct", PCT, "avg PnL %", 3, color_by_sign=True),
                    Col("fees_pct", PCT, "fees", 3),
                ],
            ),
        ],
        [
            Panel(
                "Per strategy: headline backtest (walk-forward out of sample, else latest run)",
                "table",
                """
                SELECT h.strategy, h.version, h.out_of_sample, h.pnl_pct, h.win_rate_pct,
                       h.profit_factor, h.sharpe, h.trades, h.max_drawdown_pct, h.days, h.tape,
                       coalesce(n.runs, 0) AS runs_in_range, h.warning, h.created_at
                FROM backtest_headline h
                LEFT JOIN (
                    SELECT strategy, version, count(*) AS runs
                    FROM backtest_runs
                    WHERE $__timeFilter(created_at)
                    GROUP BY 1, 2
                ) n ON n.strategy = h.strategy AND n.version = h.version
                ORDER BY h.out_of_sample DESC, h.pnl_pct DESC
                """,
                w=24,
                h=7,
                cols=[
                    Col("out_of_sample", None, "out of sample"),
                    Col("pnl_pct", PCT, "PnL %", 2, color_by_sign=True),
                    Col("win_rate_pct", PCT, "win rate", 1),
                    Col("profit_factor", "none", "profit factor", 2),
                    Col("sharpe", "none", "Sharpe", 2),
                    Col("max_drawdown_pct", PCT, "max DD", 2),
                    Col("days", "none", "days", 1),
                    Col("created_at", "dateTimeAsIso", "run at"),
                ],
            ),
        ],
        [
            Panel(
                "Runs (created in range)",
                "table",
                """
                SELECT r.created_at, r.strategy, r.version, r.phase, r.fold, r.sweep_id, r.tape,
                       r.params::text AS params, r.days, r.trades, r.pnl_pct, r.win_rate_pct,
                       r.profit_factor, r.sharpe, r.max_drawdown_pct, r.warning, r.run_id
                FROM backtest_runs r
                WHERE $__timeFilter(r.created_at)
                  AND ('$strategy' IN ('all', '') OR r.strategy = '$strategy')
                ORDER BY r.created_at DESC
                LIMIT 300
                """,
                w=24,
                h=10,
                cols=[
                    Col("created_at", "dateTimeAsIso", "run at"),
                    Col("pnl_pct", PCT, "PnL %", 2, color_by_sign=True),
                    Col("win_rate_pct", PCT, "win rate", 1),
                    Col("profit_factor", "none", "PF", 2),
                    Col("sharpe", "none", "Sharpe", 2),
                    Col("max_drawdown_pct", PCT, "max DD", 2),
                ],
                description="Single runs (phase full), sweep points (sweep_id), walk-forward "
                "fits / tests per fold and their out-of-sample chain (phase oos).",
            ),
        ],
    ]
    variables = [
        _variable(
            "strategy",
            "Strategy",
            """
            -- one strategy or all (single choice: a multi-value variable with no runs yet would
            -- expand to an empty list)
            SELECT 'all' AS strategy
            UNION ALL
            (SELECT strategy FROM backtest_runs GROUP BY strategy ORDER BY strategy)
            """,
            False,
            False,
        ),
        _variable(
            "run",
            "Run",
            """
            -- newest first; the text says what it is, the value is the run id
            SELECT run_id AS __value,
                   to_char(created_at, 'YYYY-MM-DD HH24:MI') || ' ' || strategy || ' v' || version
                   || ' ' || phase || CASE WHEN phase IN ('fit', 'test') THEN ' fold ' || fold
                                           ELSE '' END
                   || ' · ' || round(pnl_pct::numeric, 2) || ' %' AS __text
            FROM backtest_runs
            WHERE '$strategy' IN ('all', '') OR strategy = '$strategy'
            ORDER BY created_at DESC
            LIMIT 200
            """,
            False,
            False,
        ),
    ]
    return dashboard(
        "whalestack-backtests", "Backtests", rows, variables, "now-30d",
        "quant backtest runs: the selected run's equity, drawdown and trades; each strategy's "
        "headline (out of sample when walk-forward ran); runs, sweeps and walk-forward folds.",
    )  # fmt: skip


# --- Polymarket copy trading (issue 16): its own block, appended to the Polymarket dashboard ---
# The copy trader's trades are rows of `trades` with vertical 'poly' (one per position in an
# outcome token); its exposure vs the cap is poly_copy_exposure; its equity is the
# equity_snapshots row of agent poly_copy, vertical 'poly'.

POLY_HELD = "t.qty - coalesce(o.shares_out, 0)"  # shares still held after the exit steps
poly_copy_rows: list[list[Panel]] = [
    [
        Panel(
            "Copy trading PnL %",
            "stat",
            """
            SELECT (SELECT e.pnl_pct_from_start FROM equity_snapshots e
                    WHERE e.vertical = 'poly' ORDER BY e.time DESC LIMIT 1) AS pnl_pct_from_start,
                   avg(t.pnl_pct_margin) AS avg_pnl_pct,
                   100.0 * count(*) FILTER (WHERE t.pnl_quote > 0) / nullif(count(*), 0) AS win_rate_pct,
                   count(*) AS closed_trades,
                   coalesce(sum(t.pnl_quote), 0) AS pnl_usd
            FROM trades t
            WHERE t.vertical = 'poly' AND t.status = 'closed' AND $__timeFilter(t.closed_at)
            """,
            w=8,
            h=8,
            cols=[
                Col("pnl_pct_from_start", PCT, "poly equity since start", 2),
                Col("avg_pnl_pct", PCT, "avg per closed trade", 2),
                Col("win_rate_pct", PCT, "win rate", 1),
                Col("closed_trades", "none", "closed trades", 0),
                Col("pnl_usd", "currencyUSD", "realised PnL", 2),
            ],
            options={"textMode": "value_and_name", "colorMode": "value"},
            defaults={"color": {"mode": "fixed", "fixedColor": "text"}},
            description="Copy trades (agent poly_copy) closed in the range: PnL % of what each "
            "cost (fees included), win rate, realised USD; and the poly equity since start.",
        ),
        Panel(
            "Copy exposure vs cap",
            "timeseries",
            """
            SELECT $__timeGroupAlias(x.time, $__interval), max(x.exposure) AS exposure, max(x.cap) AS cap
            FROM poly_copy_exposure x
            WHERE $__timeFilter(x.time)
            GROUP BY 1
            ORDER BY 1
            """,
            w=16,
            h=8,
            fmt="time_series",
            unit="currencyUSD",
            description="Open copy positions at cost (fees included) against POLY_RISK_CAP × poly "
            "equity, at every cap check (after each entry fill and every pass).",
        ),
    ],
    [
        Panel(
            "Open copy positions",
            "table",
            f"""
            SELECT t.opened_at, t.metadata ->> 'question' AS question, t.metadata ->> 'outcome' AS outcome,
                   {POLY_HELD} AS shares, t.entry_price, p.best_bid AS bid,
                   t.margin * ({POLY_HELD}) / nullif(t.qty, 0) AS cost_usd,
                   (p.best_bid * ({POLY_HELD}) / nullif(t.margin * ({POLY_HELD}) / nullif(t.qty, 0), 0) - 1)
                       * 100 AS upnl_pct,
                   cardinality(t.followed_wallets) AS wallets, t.venue
            FROM trades t
            LEFT JOIN LATERAL (
                SELECT sum(s.shares) AS shares_out FROM poly_copy_steps s WHERE s.trade_id = t.trade_id
            ) o ON true
            LEFT JOIN LATERAL (
                SELECT b.best_bid FROM poly_prices b WHERE b.token_id = t.symbol ORDER BY b.time DESC LIMIT 1
            ) p ON true
            WHERE t.vertical = 'poly' AND t.status = 'open'
            ORDER BY t.opened_at DESC
            """,
            w=24,
            h=8,
            description="Copy positions held now: shares left after the exit steps, their cost, "
            "and the PnL % if sold at the best bid.",
            cols=[
                Col("cost_usd", "currencyUSD", "cost", 2),
                Col("upnl_pct", PCT, "uPnL % at the bid", 2, color_by_sign=True),
                Col("opened_at", "dateTimeAsIso", "opened"),
            ],
        ),
    ],
    [
        Panel(
            "Closed copy trades",
            "table",
            """
            SELECT t.closed_at, t.metadata ->> 'question' AS question, t.metadata ->> 'outcome' AS outcome,
                   t.close_reason, t.entry_price, t.exit_price, t.pnl_pct_margin AS pnl_pct,
                   t.pnl_quote AS pnl_usd, cardinality(t.followed_wallets) AS wallets, t.scanner_version
            FROM trades t
            WHERE t.vertical = 'poly' AND t.status = 'closed' AND $__timeFilter(t.closed_at)
            ORDER BY t.closed_at DESC
            LIMIT 100
            """,
            w=16,
            h=9,
            cols=[
                Col("pnl_pct", PCT, "PnL % (of cost)", 2, color_by_sign=True),
                Col("pnl_usd", "currencyUSD", "PnL", 2, color_by_sign=True),
                Col("closed_at", "dateTimeAsIso", "closed"),
            ],
        ),
        Panel(
            "Followed wallets: copy record",
            "table",
            """
            SELECT w.wallet, w.trades, w.win_rate * 100 AS win_rate_pct, w.total_pnl_pct, w.pnl_usd,
                   w.last_closed_at
            FROM poly_wallet_copy_stats w
            ORDER BY w.total_pnl_pct DESC NULLS LAST, w.trades DESC
            LIMIT 50
            """,
            w=8,
            h=9,
            description="What copying each smart wallet made us: closed copy trades that followed "
            "it (compounded PnL % of cost).",
            cols=[
                Col("win_rate_pct", PCT, "win rate", 0),
                Col("total_pnl_pct", PCT, "PnL % (compounded)", 1, color_by_sign=True),
                Col("pnl_usd", "currencyUSD", "PnL", 2, color_by_sign=True),
            ],
        ),
    ],
]

# --- total PnL: perps, poly and combined (issue 16): its own row on the Trading dashboard -------
# Each vertical's latest equity against its start: perps = the whole account's snapshot, poly =
# the copy trader's (agent poly_copy, vertical 'poly'); combined = both equities over both starts.

TOTAL_PNL = """
    WITH latest AS (
        (SELECT 'perps' AS vertical, e.equity, e.start_equity FROM equity_snapshots e
         WHERE e.agent = 'account' AND e.vertical = 'perps' ORDER BY e.time DESC LIMIT 1)
        UNION ALL
        (SELECT 'poly', e.equity, e.start_equity FROM equity_snapshots e
         WHERE e.vertical = 'poly' ORDER BY e.time DESC LIMIT 1)
    ), totals AS (
        SELECT vertical AS metric, equity, start_equity FROM latest
        UNION ALL
        SELECT 'combined', sum(equity), sum(start_equity) FROM latest HAVING count(*) > 0
    )
    SELECT metric, {value} FROM totals
    ORDER BY CASE metric WHEN 'perps' THEN 1 WHEN 'poly' THEN 2 ELSE 3 END
"""
total_pnl_rows: list[list[Panel]] = [
    [
        Panel(
            "Total PnL % (perps, poly, combined)",
            "stat",
            TOTAL_PNL.format(value="(equity / nullif(start_equity, 0) - 1) * 100 AS pnl_pct"),
            w=12,
            h=4,
            unit=PCT,
            cols=[Col("pnl_pct", PCT, None, 2)],
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                "textMode": "value_and_name",
            },
            description="Latest equity against its start: the perps account, the Polymarket copy "
            "trader, and both together.",
        ),
        Panel(
            "Total PnL USD (perps, poly, combined)",
            "stat",
            TOTAL_PNL.format(value="equity - start_equity AS pnl_usd"),
            w=12,
            h=4,
            unit="currencyUSD",
            cols=[Col("pnl_usd", "currencyUSD", None, 2)],
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                "textMode": "value_and_name",
            },
        ),
    ],
]


DASHBOARDS = {
    "trading.json": dashboard(
        "whalestack-trading",
        "Trading",
        [*trading_rows[:1], *total_pnl_rows, *trading_rows[1:]],
        trading_vars,
        "now-24h",
        "Live PnL %, equity, open positions, closed trades and stop moves; filter by agent / scanner.",
    ),
    "scanners.json": dashboard(
        "whalestack-scanners",
        "Scanners",
        scanner_rows,
        scanner_vars,
        "now-6h",
        "Top-10 ranking, fast movers, OI / volume spikes, liquidation clusters per coin, leaderboard.",
    ),
    "system.json": dashboard(
        "whalestack-system",
        "System",
        system_rows,
        [],
        "now-6h",
        "Service heartbeats, stream backlogs and dead letters, data freshness, broadcasts, errors.",
    ),
    "polymarket.json": dashboard(
        "whalestack-polymarket",
        "Polymarket",
        [*poly_rows, *poly_copy_rows],
        [],
        "now-24h",
        "Smart wallets leaderboard, wallet labels, signals with their checklist, hybrid signals, "
        "sync clusters, data freshness; copy trading: PnL %, exposure vs cap, positions.",
    ),
    "backtests.json": backtests_dashboard(),
}


def render_all() -> dict[str, str]:
    return {
        name: json.dumps(d, indent=2, ensure_ascii=False) + "\n" for name, d in DASHBOARDS.items()
    }


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")
