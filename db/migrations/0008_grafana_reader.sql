-- 0008_grafana_reader.sql
-- What Grafana reads, and nothing more:
--   * grafana_reader: a NOLOGIN role with SELECT on exactly the tables the dashboards query.
--     The login Grafana connects as (GRAFANA_RO_USER) is created by `quant migrate` when
--     GRAFANA_RO_PASS is set, as a member of this role (a password never sits in a migration).
--   * stream_stats: Redis stream backlogs and dead letters, sampled into the database by the
--     journal (Grafana reads only the database).
--   * the indexes the dashboard panels need to stay fast over a month of 500-coin data.
--
-- Roles are cluster-wide: several databases of one server (tests, benchmarks) share
-- grafana_reader; the grants below are per database.


-- ===========================================================================================
-- stream_stats (hypertable): one row per stream x consumer group per sample
-- ===========================================================================================

CREATE TABLE IF NOT EXISTS stream_stats (
    time            timestamptz NOT NULL,           -- sample time, aligned to STREAM_STATS_INTERVAL_S
    stream          text        NOT NULL,           -- stream name without the namespace ('signals', 'deadletter', ...)
    consumer_group  text        NOT NULL DEFAULT '',  -- '' = the stream itself (no group)
    length          bigint      NOT NULL,           -- XLEN
    consumers       int,                            -- consumers in the group
    pending         bigint,                         -- delivered, not yet acknowledged
    lag             bigint,                         -- entries not yet delivered to the group (NULL: unknown)
    agent           text        NOT NULL,           -- instance that sampled it
    PRIMARY KEY (stream, consumer_group, time)
);
COMMENT ON TABLE stream_stats IS
    'Redis stream length, pending and lag per consumer group, sampled by the journal (hypertable)';
SELECT ws_create_hypertable('stream_stats', 'time', '1 day');
CREATE INDEX IF NOT EXISTS stream_stats_time_idx ON stream_stats (time DESC);
SELECT ws_add_retention('stream_stats', '90 days');


-- ===========================================================================================
-- Indexes for the dashboard panels
-- ===========================================================================================

-- equity curve / PnL % per agent across venues (the key leads with venue)
CREATE INDEX IF NOT EXISTS equity_snapshots_agent_time_idx ON equity_snapshots (agent, time DESC);
-- failed broadcasts over a long range without walking every sent one
CREATE INDEX IF NOT EXISTS broadcasts_problems_idx ON broadcasts (time DESC)
    WHERE status IN ('failed', 'rate_limited');
-- stop moves of the trailing ladder
CREATE INDEX IF NOT EXISTS position_monitor_logs_action_time_idx
    ON position_monitor_logs (action, time DESC);


-- ===========================================================================================
-- grafana_reader: SELECT on the dashboards' tables, nothing else
-- ===========================================================================================

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        BEGIN
            CREATE ROLE grafana_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
            COMMENT ON ROLE grafana_reader IS
                'Read-only access for Grafana: SELECT on the dashboard tables (grants per database)';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it at the same moment
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON
    service_heartbeats, agent_logs, stream_stats,
    ohlcv, market_snapshots, liquidation_events, liquidation_refreshes,
    scanners, liquidation_clusters, cluster_targets, coin_liquidation_patterns,
    oi_volume_spikes, fast_price_movers,
    coin_rankings, signals,
    orders, trades, position_monitor_logs, equity_snapshots,
    broadcasts
TO grafana_reader;
