"""grafana.slowest_panel_ms (baseline null): every dashboard panel's SQL, expanded as Grafana
expands it (quantcore.dashboards, plain-PostgreSQL mode: no TimescaleDB on the bench machines),
run as the read-only grafana_reader role over a 30-day time range on a generated month of
500-coin data. Each query runs RUNS times (after one warm-up); its time is the median; the
metric is the slowest panel's median, named in the note.

The month is generated server-side (generate_series, no client round trips) into a database
kept between runs, `ws_benchcache_grafana_g<GENERATOR_VERSION>`: a warm run only re-applies
pending migrations and measures. Bump GENERATOR_VERSION when the data shape changes. Sizes
(30 days, 500 coins), realistic for what the panels read:

- coin_rankings: a top 10 every minute (432,000 rows); fast_price_movers and
  oi_volume_spikes: 7 coins a minute each (302,400 rows each); signals 3,000;
- trades 3,000 closed + 10 open, orders 6,020, position_monitor_logs 6,000;
  equity_snapshots: every minute for the account and 3 agents (172,800); broadcasts 36,000;
- agent_logs: 1,000,000 rows (1.5 % warnings, 0.5 % errors); stream_stats: 12 rows every 30 s
  (1,036,800); service_heartbeats 20;
- cluster_targets: every coin x timeframe hourly (3,240,000); liquidation_refreshes 4,500;
  coin_liquidation_patterns 4,500;
- tables the panels only touch through "latest row" or one-coin index lookups are generated
  smaller, since the other rows only deepen the index: liquidation_clusters for the last day
  (a scan every 15 min, 4 clusters per coin x timeframe: 1,728,000), market_snapshots for the
  last day (720,000), 1-minute ohlcv for 50 coins over the month (2,160,000),
  liquidation_events 100,000.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from quantcore import dashboards as dash
from quantcore.db import conninfo
from quantcore.migrations import READER_ROLE, migrate
from quantcore.testing import Sandbox
from scripts.benchmarks.report import Group, Metric, load_note

GENERATOR_VERSION = 1
RUNS = 3
DAYS = 30

GENERATE = [
    # --- scanners ---------------------------------------------------------------------------
    """
    INSERT INTO scanners (name, version, params, params_hash, description)
    VALUES ('ranker', '1.0.0', '{}', 'a', 'ranker'), ('ranker', '1.1.0', '{}', 'b', 'ranker v1.1'),
           ('spike_scanner', '1.0.0', '{}', 'c', 'spikes')
    """,
    """
    INSERT INTO coin_rankings (time, cycle_id, rank, symbol, score, imbalance, imbalance_strength,
        direction, cluster_size_pct, success_rate, target_price, price, scanner, scanner_version)
    SELECT %(start)s + c * interval '1 minute', c::text, r,
           format('C%%sUSDT', lpad((((c / 120) * 11 + r * 37) %% 500)::text, 3, '0')),
           100 - r * 3 + random() * 5, 0.5 + random() * 0.4, random(),
           CASE WHEN r %% 2 = 0 THEN 'long' ELSE 'short' END, 50 + random() * 150, random(),
           100 * (1 + random() * 0.05), 100, 'ranker', '1.0.0'
    FROM generate_series(0, %(minutes)s - 1) c, generate_series(1, 10) r
    """,
    """
    INSERT INTO fast_price_movers (time, symbol, mode, direction, price, price_change_1m_pct,
        price_change_5m_pct, threshold_1m_pct, threshold_5m_pct, trigger_window,
        refresh_requested, scanner, scanner_version)
    SELECT %(start)s + m * interval '1 minute',
           format('C%%sUSDT', lpad(((m * 31 + k * 71) %% 500)::text, 3, '0')),
           CASE WHEN k %% 2 = 0 THEN 'fixed' ELSE 'coin_specific' END,
           CASE WHEN random() < 0.5 THEN 'up' ELSE 'down' END, 100, 2 + random() * 3,
           5 + random() * 4, 2, 5, '1m', random() < 0.3, 'spike_scanner', '1.0.0'
    FROM generate_series(0, %(minutes)s - 1) m, generate_series(0, 6) k
    """,
    """
    INSERT INTO oi_volume_spikes (time, symbol, mode, oi_change_15m_pct, volume_5m,
        volume_1h_avg_5m, volume_ratio, price_change_5m_pct, is_oi_spike, is_volume_spike,
        refresh_requested, scanner, scanner_version)
    SELECT %(start)s + m * interval '1 minute',
           format('C%%sUSDT', lpad(((m * 43 + k * 89) %% 500)::text, 3, '0')),
           CASE WHEN k %% 2 = 0 THEN 'fixed' ELSE 'coin_specific' END,
           3 + random() * 5, 1e6, 5e5, 1.5 + random() * 3, random() * 4 - 2,
           random() < 0.6, random() < 0.6, random() < 0.3, 'spike_scanner', '1.0.0'
    FROM generate_series(0, %(minutes)s - 1) m, generate_series(0, 6) k
    """,
    """
    INSERT INTO signals (time, signal_id, symbol, direction, score, rank, price, scanner,
        scanner_version, agent, status)
    SELECT %(start)s + i * (interval '30 days' / 3000), gen_random_uuid(),
           format('C%%sUSDT', lpad((i %% 500)::text, 3, '0')),
           CASE WHEN i %% 2 = 0 THEN 'long' ELSE 'short' END, 80, 1 + i %% 3, 100, 'ranker',
           CASE WHEN i %% 3 = 0 THEN '1.1.0' ELSE '1.0.0' END, 'ranker', 'traded'
    FROM generate_series(0, 2999) i
    """,
    """
    INSERT INTO cluster_targets (time, symbol, timeframe, scan_time, side, price_low, price_high,
        value_usd, ref_price, edge, imbalance, scanner, scanner_version)
    SELECT %(start)s + h * interval '1 hour', format('C%%sUSDT', lpad(c::text, 3, '0')), tf,
           %(start)s + h * interval '1 hour', CASE WHEN (h + c) %% 2 = 0 THEN 'short' ELSE 'long' END,
           100 + (h %% 7), 101 + (h %% 7), 1e6 * (1 + random()), 100, 100 + (h %% 7), random(),
           'cluster_scanner', '1.0.0'
    FROM generate_series(0, %(hours)s - 1) h, generate_series(0, 499) c,
         unnest(ARRAY['12h','24h','3d','7d','14d','30d','90d','180d','1y']) tf
    """,
    """
    INSERT INTO liquidation_clusters (time, symbol, timeframe, side, price_low, price_high, center,
        value_usd, level_count, ref_price, distance_pct, size_pct_of_typical, source, scanner,
        scanner_version)
    SELECT %(end)s - s * interval '15 minutes', format('C%%sUSDT', lpad(c::text, 3, '0')), tf,
           CASE WHEN k < 2 THEN 'short' ELSE 'long' END, 100 + k * 2 - 4, 101 + k * 2 - 4,
           100.5 + k * 2 - 4, 1e6 * (1 + random()), 5, 100, k * 2 - 3.5, 50 + random() * 100,
           'sim', 'cluster_scanner', '1.0.0'
    FROM generate_series(0, 95) s, generate_series(0, 499) c, generate_series(0, 3) k,
         unnest(ARRAY['12h','24h','3d','7d','14d','30d','90d','180d','1y']) tf
    """,
    """
    INSERT INTO liquidation_refreshes (symbol, timeframe, source, refreshed_at, level_count,
        duration_ms, trigger, agent)
    SELECT format('C%%sUSDT', lpad(c::text, 3, '0')), tf, 'sim',
           %(end)s - (random() * 300) * interval '1 second', 140, 50, 'schedule', 'bench'
    FROM generate_series(0, 499) c, unnest(ARRAY['12h','24h','3d','7d','14d','30d','90d','180d','1y']) tf
    """,
    """
    INSERT INTO coin_liquidation_patterns (symbol, timeframe, success_rate, samples, wins, losses,
        horizon_s, avg_time_to_target_s, max_wick_up_pct, max_wick_down_pct, agent)
    SELECT format('C%%sUSDT', lpad(c::text, 3, '0')), tf, random(), 100, 50, 50, 86400, 3600,
           5, 5, 'cluster_scanner'
    FROM generate_series(0, 499) c, unnest(ARRAY['12h','24h','3d','7d','14d','30d','90d','180d','1y']) tf
    """,
    # --- market data ---------------------------------------------------------------------------
    """
    INSERT INTO ohlcv (time, symbol, interval, open, high, low, close, volume, turnover, source)
    SELECT %(start)s + m * interval '1 minute', format('C%%sUSDT', lpad((c * 10)::text, 3, '0')),
           '1m', p, p * 1.001, p * 0.999, p, 10, 10 * p, 'sim'
    FROM generate_series(0, 49) c, generate_series(0, %(minutes)s - 1) m,
         LATERAL (SELECT 100 + sin(m / 300.0 + c) * 5 AS p) x
    """,
    """
    INSERT INTO market_snapshots (time, symbol, price, open_interest, source)
    SELECT %(end)s - m * interval '1 minute', format('C%%sUSDT', lpad(c::text, 3, '0')),
           100 + sin(m / 300.0 + c) * 5, 1e6, 'sim'
    FROM generate_series(0, 499) c, generate_series(0, 1439) m
    """,
    """
    INSERT INTO liquidation_events (time, event_key, symbol, side, price, qty, value_usd, source)
    SELECT %(start)s + i * (interval '30 days' / 100000), 'e' || i,
           format('C%%sUSDT', lpad((i %% 500)::text, 3, '0')),
           CASE WHEN i %% 2 = 0 THEN 'long' ELSE 'short' END, 100, 10, 1000, 'sim'
    FROM generate_series(0, 99999) i
    """,
    # --- trading ----------------------------------------------------------------------------
    """
    INSERT INTO trades (trade_id, agent, agent_version, scanner, scanner_version, source, venue,
        symbol, direction, leverage, qty, margin, entry_price, exit_price, stop_loss, take_profit,
        status, close_reason, pnl_quote, pnl_pct_price, pnl_pct_margin, fees, opened_at, closed_at)
    SELECT gen_random_uuid(), 'hunter_' || (i %% 3), '1.0.0',
           CASE i %% 4 WHEN 0 THEN 'ranker' WHEN 1 THEN 'ranker' WHEN 2 THEN 'spike_scanner' END,
           CASE i %% 4 WHEN 0 THEN '1.0.0' WHEN 1 THEN '1.1.0' WHEN 2 THEN '1.0.0' END,
           CASE WHEN i %% 4 = 3 THEN 'manual' ELSE 'auto' END, 'paper',
           format('C%%sUSDT', lpad((i %% 500)::text, 3, '0')),
           CASE WHEN i %% 2 = 0 THEN 'long' ELSE 'short' END, 5, 5, 100, 100, 100 + pnl, 97, 106,
           CASE WHEN i >= 3000 THEN 'open' ELSE 'closed' END,
           CASE WHEN i >= 3000 THEN NULL WHEN pnl > 0 THEN 'tp' ELSE 'sl' END,
           CASE WHEN i < 3000 THEN pnl * 5 END, CASE WHEN i < 3000 THEN pnl END,
           CASE WHEN i < 3000 THEN pnl * 5 END, 0.5,
           opened, CASE WHEN i < 3000 THEN opened + interval '40 minutes' END
    FROM generate_series(0, 3009) i,
         LATERAL (SELECT random() * 8 - 3 AS pnl,
                         CASE WHEN i < 3000 THEN %(start)s + i * (interval '30 days' / 3000)
                              ELSE %(end)s - interval '1 hour' END AS opened) x
    """,
    """
    INSERT INTO orders (order_link_id, venue, trade_id, symbol, side, order_type, qty, price,
        status, filled_qty, avg_fill_price, fee, created_at, updated_at, agent)
    SELECT left(replace(t.trade_id::text, '-', ''), 30) || '-' || k, 'paper', t.trade_id, t.symbol,
           CASE WHEN k = 0 THEN 'buy' ELSE 'sell' END, 'limit', 5, 100, 'filled', 5, 100, 0.25,
           coalesce(t.closed_at, t.opened_at), coalesce(t.closed_at, t.opened_at), t.agent
    FROM trades t, generate_series(0, 1) k
    WHERE k = 0 OR t.closed_at IS NOT NULL
    """,
    """
    INSERT INTO position_monitor_logs (time, trade_id, symbol, action, old_stop, new_stop, price,
        profit_pct, profit_basis, ladder_step, agent, venue)
    SELECT t.opened_at + interval '10 minutes' + k * interval '10 minutes', t.trade_id, t.symbol,
           CASE WHEN k = 0 THEN 'stop_moved' ELSE 'closed' END, 97, 100, 101, 10, 'margin', 1,
           'position_monitor', 'paper'
    FROM trades t, generate_series(0, 1) k
    WHERE t.status = 'closed'
    """,
    """
    INSERT INTO equity_snapshots (time, venue, agent, equity, balance, unrealized_pnl,
        start_equity, pnl_pct_from_start, open_positions)
    SELECT %(start)s + m * interval '1 minute', 'paper', a, eq, eq, 0, 10000,
           (eq / 10000 - 1) * 100, 3
    FROM generate_series(0, %(minutes)s - 1) m,
         unnest(ARRAY['account', 'hunter_0', 'hunter_1', 'hunter_2']) a,
         LATERAL (SELECT 10000 + m * 0.02 + sin(m / 500.0) * 50 AS eq) x
    """,
    """
    INSERT INTO broadcasts (time, event_id, event_type, channel, status, error, text, agent)
    SELECT %(start)s + i * (interval '30 days' / 9000), gen_random_uuid(),
           (ARRAY['signal', 'entry', 'exit'])[1 + i %% 3], ch,
           CASE WHEN r < 0.03 THEN 'failed' WHEN r < 0.05 THEN 'rate_limited' ELSE 'sent' END,
           CASE WHEN r < 0.03 THEN 'timeout' END, 'text', 'broadcaster'
    FROM generate_series(0, 8999) i, unnest(ARRAY['telegram', 'x', 'email', 'sms']) ch,
         LATERAL (SELECT random() AS r) x
    """,
    # --- system ------------------------------------------------------------------------------
    """
    INSERT INTO agent_logs (time, event_id, service, agent, vertical, level, event_type, message)
    SELECT %(start)s + i * (interval '30 days' / 1000000), gen_random_uuid(),
           (ARRAY['ranker', 'spike_scanner', 'cluster_scanner', 'autotrader', 'journal'])[1 + i %% 5],
           'agent', 'perps',
           CASE WHEN r < 0.005 THEN 'error' WHEN r < 0.02 THEN 'warning' ELSE 'info' END,
           'decision', 'message'
    FROM generate_series(0, 999999) i, LATERAL (SELECT random() AS r) x
    """,
    """
    INSERT INTO stream_stats (time, stream, consumer_group, length, consumers, pending, lag, agent)
    SELECT %(start)s + s * interval '30 seconds', st, g, 1000 + (s %% 100), 2,
           CASE WHEN g <> '' THEN s %% 7 END, CASE WHEN g <> '' THEN s %% 5 END, 'journal'
    FROM generate_series(0, %(minutes)s * 2 - 1) s,
         unnest(ARRAY['signals', 'orders', 'refresh', 'agent_logs', 'broadcasts', 'deadletter']) st,
         unnest(ARRAY['', 'group']) g
    WHERE NOT (st = 'deadletter' AND g <> '')
    """,
    """
    INSERT INTO service_heartbeats (service, instance, status, version, started_at, beat_at, info)
    SELECT s, s || '-' || k, 'ok', '1.0.0', %(end)s - interval '1 day', %(end)s,
           '{"data_source": "sim", "trading_mode": "paper"}'
    FROM unnest(ARRAY['simulator', 'market_collector', 'liquidation_collector', 'spike_scanner',
                      'cluster_scanner', 'ranker', 'journal', 'autotrader', 'position_monitor',
                      'broadcaster']) s, generate_series(1, 2) k
    """,
]


def _cache_name() -> str:
    return f"ws_benchcache_grafana_g{GENERATOR_VERSION}"


def _ensure_dataset(box: Sandbox) -> tuple[Any, datetime, float | None]:
    """(settings of the cache database, its generation 'now', seconds spent generating or None
    when it was already there)."""
    name = _cache_name()
    with psycopg.connect(conninfo(box.settings, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = box.settings.model_copy(update={"timescale_db_name": name})
    migrate(settings)  # new migrations (e.g. indexes) apply to the cached data too
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_dataset (version int PRIMARY KEY, "
            "generated_at timestamptz NOT NULL, data_end timestamptz NOT NULL, seconds float8)"
        )
        row = conn.execute(
            "SELECT data_end FROM bench_dataset WHERE version = %s", (GENERATOR_VERSION,)
        ).fetchone()
        if row:
            return settings, row[0], None
        started = time.perf_counter()
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        params = {"start": end - timedelta(days=DAYS), "end": end, "minutes": DAYS * 1440,
                  "hours": DAYS * 24}  # fmt: skip
        with conn.transaction():
            for stmt in GENERATE:
                conn.execute(stmt, params)
        conn.execute("VACUUM ANALYZE")
        seconds = time.perf_counter() - started
        conn.execute(
            "INSERT INTO bench_dataset VALUES (%s, now(), %s, %s)",
            (GENERATOR_VERSION, end, seconds),
        )
        return settings, end, seconds


def _variables(
    conn: psycopg.Connection[Any], d: dash.Dashboard, rng: dash.TimeRange
) -> dict[str, dash.Variable]:
    out: dict[str, dash.Variable] = {}
    for v in d.variables:
        rows = conn.execute(dash.render(v.raw_sql, out, rng, timescaledb=False)).fetchall()
        options = tuple(str(r[0]) for r in rows)
        value: str | tuple[str, ...] = (
            dash.ALL_VALUE if v.include_all else (options[0] if options else "")
        )
        out[v.name] = dash.Variable(v.name, value, options, v.multi, v.include_all, v.all_value)
    return out


async def run(box: Sandbox) -> dict[str, Metric]:
    settings, end, generated_s = _ensure_dataset(box)
    rng = dash.TimeRange(end - timedelta(days=DAYS), end)
    timings: dict[str, float] = {}
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(READER_ROLE)))
        for d in dash.load_dashboards(dash.default_folder()):
            variables = _variables(conn, d, rng)
            for q in d.queries:
                text = dash.render(
                    q.raw_sql, variables, rng, timescaledb=False, max_points=q.max_points
                )
                conn.execute(text).fetchall()  # warm-up
                runs = []
                for _ in range(RUNS):
                    t0 = time.perf_counter()
                    conn.execute(text).fetchall()
                    runs.append((time.perf_counter() - t0) * 1000)
                timings[q.name] = statistics.median(runs)
    slowest = max(timings, key=lambda k: timings[k])
    ranked = sorted(timings.items(), key=lambda kv: -kv[1])
    first = (
        f"dataset generated in this run: {generated_s:.0f} s"
        if generated_s is not None
        else "cached dataset (first generation takes ~3 min)"
    )
    note = (
        f"slowest of {len(timings)} panel queries over 30 days of 500 coins: {slowest}; "
        f"next: {', '.join(f'{n} {ms:.0f} ms' for n, ms in ranked[1:4])}; median of {RUNS} runs "
        f"each as {READER_ROLE}, plain PostgreSQL (no TimescaleDB); {first}; {load_note()}"
    )
    return {
        "grafana.slowest_panel_ms": Metric.measured(timings[slowest], "ms", None, "lower", note)
    }


GROUP = Group("grafana", ("grafana.slowest_panel_ms",), run)
