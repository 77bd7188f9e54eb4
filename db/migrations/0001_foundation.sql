-- 0001_foundation.sql
-- Foundation: TimescaleDB (when the server has it), guarded helpers for every
-- TimescaleDB-only statement, service heartbeats and the agent log.
--
-- Runs inside one transaction (the migration runner wraps it); no BEGIN/COMMIT here.
-- Applies unchanged to plain PostgreSQL >= 15 (test machines) and to the
-- timescale/timescaledb image (compose). Later migrations must never call
-- create_hypertable / add_*_policy directly: they go through the ws_* helpers below.


-- ===========================================================================================
-- TimescaleDB extension (only where the server offers it)
-- ===========================================================================================

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb is not available on this server: tables stay plain PostgreSQL tables';
    ELSIF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
          AND coalesce(current_setting('shared_preload_libraries', true), '') NOT ILIKE '%timescaledb%' THEN
        -- Installed but not preloaded: CREATE EXTENSION would fail, so behave as plain PostgreSQL.
        RAISE NOTICE 'timescaledb is installed but not in shared_preload_libraries: skipped';
    ELSE
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$$;


-- ===========================================================================================
-- Guarded helpers. Their bodies reach TimescaleDB only through EXECUTE, so they can be
-- created (and called, as no-ops) on a server without the extension.
-- ===========================================================================================

-- true when the timescaledb extension is installed in this database
CREATE OR REPLACE FUNCTION ws_timescale_enabled() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;
COMMENT ON FUNCTION ws_timescale_enabled() IS
    'true when the timescaledb extension is installed in this database';

-- Turn tbl into a hypertable partitioned on time_col. Returns true when TimescaleDB did it
-- (or it already was one), false when this is plain PostgreSQL (no-op).
-- Default indexes are off: every migration creates its own time index explicitly, so plain
-- PostgreSQL and TimescaleDB end up with the same indexes.
CREATE OR REPLACE FUNCTION ws_create_hypertable(tbl regclass, time_col text, chunk interval DEFAULT '1 day')
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ws_timescale_enabled() THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'SELECT create_hypertable(%L::regclass, %L::name, chunk_time_interval => %L::interval, '
        'create_default_indexes => false, if_not_exists => true, migrate_data => true)',
        tbl::text, time_col, chunk);
    RETURN true;
END
$$;
COMMENT ON FUNCTION ws_create_hypertable(regclass, text, interval) IS
    'create_hypertable when TimescaleDB is installed; a no-op (returns false) otherwise';

-- Enable native compression (segmented by segment_by, e.g. 'symbol') and a policy that
-- compresses chunks older than `after`. No-op (false) without TimescaleDB.
CREATE OR REPLACE FUNCTION ws_add_compression(tbl regclass, segment_by text, after interval)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    already boolean;
BEGIN
    IF NOT ws_timescale_enabled() THEN
        RETURN false;
    END IF;
    EXECUTE
        'SELECT h.compression_enabled FROM timescaledb_information.hypertables h '
        'WHERE format(''%I.%I'', h.hypertable_schema, h.hypertable_name)::regclass = $1'
        INTO already USING tbl;
    IF already IS NULL THEN
        RAISE EXCEPTION 'ws_add_compression: % is not a hypertable', tbl;
    END IF;
    IF NOT already THEN
        -- re-setting compression on a table with compressed chunks fails, so only once
        EXECUTE format(
            'ALTER TABLE %s SET (timescaledb.compress, timescaledb.compress_segmentby = %L)',
            tbl, segment_by);
    END IF;
    EXECUTE format(
        'SELECT add_compression_policy(%L::regclass, compress_after => %L::interval, if_not_exists => true)',
        tbl::text, after);
    RETURN true;
END
$$;
COMMENT ON FUNCTION ws_add_compression(regclass, text, interval) IS
    'TimescaleDB compression + policy when installed; a no-op (returns false) otherwise';

-- Drop chunks older than `keep`. No-op (false) without TimescaleDB.
CREATE OR REPLACE FUNCTION ws_add_retention(tbl regclass, keep interval)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ws_timescale_enabled() THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'SELECT add_retention_policy(%L::regclass, drop_after => %L::interval, if_not_exists => true)',
        tbl::text, keep);
    RETURN true;
END
$$;
COMMENT ON FUNCTION ws_add_retention(regclass, interval) IS
    'TimescaleDB retention policy when installed; a no-op (returns false) otherwise';


-- ===========================================================================================
-- service_heartbeats (plain): one row per running service instance, upserted every beat
-- ===========================================================================================

CREATE TABLE IF NOT EXISTS service_heartbeats (
    service     text        NOT NULL,               -- compose service name, e.g. 'collector'
    instance    text        NOT NULL,               -- replica id (hostname / INSTANCE setting)
    host        text,
    pid         int,
    version     text,                               -- package / image version
    status      text        NOT NULL,               -- 'starting' | 'ok' | 'degraded' | 'stopping' | 'stopped'
    started_at  timestamptz NOT NULL,
    beat_at     timestamptz NOT NULL,               -- last beat; stale after HEARTBEAT_TTL_S
    info        jsonb       NOT NULL DEFAULT '{}',  -- lag, backlog, mode, data source, ...
    PRIMARY KEY (service, instance)
);
COMMENT ON TABLE service_heartbeats IS
    'Liveness of every service instance: upserted on (service, instance) every heartbeat';


-- ===========================================================================================
-- agent_logs (hypertable): decisions and incidents every service wants kept and visible
-- ===========================================================================================

CREATE TABLE IF NOT EXISTS agent_logs (
    time            timestamptz NOT NULL,
    event_id        uuid        NOT NULL,            -- bus envelope id: re-delivery is idempotent
    service         text        NOT NULL,
    agent           text        NOT NULL,
    instance        text,
    vertical        text        NOT NULL DEFAULT 'perps'
                    CHECK (vertical IN ('perps', 'poly', 'system')),
    level           text        NOT NULL
                    CHECK (level IN ('debug', 'info', 'warning', 'error', 'critical')),
    event_type      text        NOT NULL,
    message         text        NOT NULL,
    symbol          text,
    correlation_id  text,
    detail          jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (event_id, time)
);
COMMENT ON TABLE agent_logs IS
    'Decision / incident log of every service (hypertable); idempotent on (event_id, time)';

SELECT ws_create_hypertable('agent_logs', 'time', '1 day');

CREATE INDEX IF NOT EXISTS agent_logs_time_idx        ON agent_logs (time DESC);
CREATE INDEX IF NOT EXISTS agent_logs_agent_time_idx  ON agent_logs (agent, time DESC);
CREATE INDEX IF NOT EXISTS agent_logs_problems_idx    ON agent_logs (level, time DESC)
    WHERE level IN ('warning', 'error', 'critical');
CREATE INDEX IF NOT EXISTS agent_logs_correlation_idx ON agent_logs (correlation_id, time DESC)
    WHERE correlation_id IS NOT NULL;
