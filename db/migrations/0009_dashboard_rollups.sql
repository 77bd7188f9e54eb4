-- 0009_dashboard_rollups.sql
-- 5-minute rollups of the time series the heaviest dashboard panels aggregate, under the same
-- name and with the same columns in both worlds:
--
--   stream_stats_5m       (bucket, stream, consumer_group, max_length, max_backlog)
--   fast_price_movers_5m  (bucket, direction, movers)
--   oi_volume_spikes_5m   (bucket, is_oi_spike, is_volume_spike, spikes)
--
-- * TimescaleDB present: a continuous aggregate (real-time: materialized buckets plus the raw
--   rows newer than the last refresh), refreshed every 5 minutes by a policy.
-- * Plain PostgreSQL: a small table kept current by statement-level triggers on the raw table
--   (transition tables, so one COPY / multi-row upsert is one aggregate upsert). A plain VIEW
--   would have the same columns but re-aggregate the raw rows on every refresh: no faster than
--   the raw query. The triggers add one small upsert per write statement (the journal's sampler
--   every 30 s, the spike scanner once a scan).
--
-- Buckets start at multiples of 5 minutes (time_bucket's default origin 2000-01-03 00:00 UTC;
-- date_bin with the same origin in the fallback), so any Grafana interval that is a whole
-- number of 5 minutes groups whole buckets: the panels read a rollup only then, else the raw
-- table (short ranges, which the time indexes keep cheap).
--
-- The definition of each continuous aggregate is the SELECT passed to ws_create_continuous_
-- aggregate below; tests/test_rollups.py runs that same SELECT on plain PostgreSQL (time_bucket
-- replaced by date_bin) and checks it equals what the fallback table holds.


-- ===========================================================================================
-- Guarded helper: a continuous aggregate + refresh policy when TimescaleDB is installed
-- ===========================================================================================

-- The statements ws_create_continuous_aggregate runs (callable anywhere, so they can be checked
-- on plain PostgreSQL). WITH NO DATA: a migration runs in a transaction, where a cagg cannot be
-- refreshed; the policy's first run materializes the history (start_offset NULL = from the
-- oldest row), later runs only the invalidated and newest buckets.
CREATE OR REPLACE FUNCTION ws_continuous_aggregate_sql(
    view_name text, query text, end_offset interval, schedule interval
) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[
        format('CREATE MATERIALIZED VIEW %I '
               'WITH (timescaledb.continuous, timescaledb.materialized_only = false) '
               'AS %s WITH NO DATA', view_name, query),
        format('SELECT add_continuous_aggregate_policy(%L::regclass, start_offset => NULL, '
               'end_offset => %L::interval, schedule_interval => %L::interval, '
               'if_not_exists => true)', view_name, end_offset, schedule)
    ]
$$;
COMMENT ON FUNCTION ws_continuous_aggregate_sql(text, text, interval, interval) IS
    'The CREATE MATERIALIZED VIEW (continuous) and add_continuous_aggregate_policy statements '
    'ws_create_continuous_aggregate runs';

-- Create the continuous aggregate view_name AS query (real-time) and its refresh policy.
-- Returns true when TimescaleDB did it, false on plain PostgreSQL (no-op: the caller creates
-- the fallback under the same name).
CREATE OR REPLACE FUNCTION ws_create_continuous_aggregate(
    view_name text, query text, end_offset interval, schedule interval
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    stmt text;
BEGIN
    IF NOT ws_timescale_enabled() THEN
        RETURN false;
    END IF;
    FOREACH stmt IN ARRAY ws_continuous_aggregate_sql(view_name, query, end_offset, schedule) LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN true;
END
$$;
COMMENT ON FUNCTION ws_create_continuous_aggregate(text, text, interval, interval) IS
    'Real-time continuous aggregate + refresh policy when TimescaleDB is installed; '
    'a no-op (returns false) otherwise';


-- The fallback's bucket: time_bucket('5 minutes', t) of TimescaleDB (same origin, 2000-01-03
-- 00:00 UTC, so the same buckets). Inlined by the planner (SQL, immutable).
CREATE OR REPLACE FUNCTION ws_bucket_5m(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin('5 minutes', t, TIMESTAMPTZ '2000-01-03 00:00:00+00')
$$;
COMMENT ON FUNCTION ws_bucket_5m(timestamptz) IS
    'Start of the 5-minute bucket of t, as time_bucket(''5 minutes'', t) computes it';


-- ===========================================================================================
-- stream_stats_5m: the peak backlog per stream x consumer group every 5 minutes
-- ===========================================================================================

SELECT ws_create_continuous_aggregate('stream_stats_5m', $cagg$
    SELECT time_bucket('5 minutes', time) AS bucket, stream, consumer_group,
           max(length) AS max_length,
           max(coalesce(pending, 0) + coalesce(lag, 0)) AS max_backlog
    FROM stream_stats
    GROUP BY time_bucket('5 minutes', time), stream, consumer_group
$cagg$, '5 minutes', '5 minutes');

DO $$
BEGIN
    IF ws_timescale_enabled() THEN
        RETURN;
    END IF;

    CREATE TABLE IF NOT EXISTS stream_stats_5m (
        bucket          timestamptz NOT NULL,   -- start of the 5-minute bucket
        stream          text        NOT NULL,
        consumer_group  text        NOT NULL,   -- '' = the stream itself
        max_length      bigint      NOT NULL,   -- peak XLEN in the bucket
        max_backlog     bigint      NOT NULL,   -- peak pending + lag (0 for the stream itself)
        PRIMARY KEY (bucket, stream, consumer_group)
    );
    COMMENT ON TABLE stream_stats_5m IS
        'stream_stats per 5 minutes (peak length and backlog); kept by triggers on stream_stats '
        '(a continuous aggregate under TimescaleDB)';

    -- Peaks only grow on insert (an idempotent upsert); an update or delete of samples
    -- re-aggregates the buckets it touched from stream_stats; a truncate empties the rollup.
    CREATE OR REPLACE FUNCTION ws_stream_stats_5m_rebuild(buckets timestamptz[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
        DELETE FROM stream_stats_5m WHERE bucket = ANY (buckets);
        INSERT INTO stream_stats_5m (bucket, stream, consumer_group, max_length, max_backlog)
        SELECT b.bucket, s.stream, s.consumer_group, max(s.length),
               max(coalesce(s.pending, 0) + coalesce(s.lag, 0))
        FROM (SELECT DISTINCT unnest(buckets) AS bucket) b
        JOIN stream_stats s ON s.time >= b.bucket AND s.time < b.bucket + interval '5 minutes'
        GROUP BY 1, 2, 3;
    $fn$;

    CREATE OR REPLACE FUNCTION ws_stream_stats_5m_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO stream_stats_5m AS r
                (bucket, stream, consumer_group, max_length, max_backlog)
            SELECT ws_bucket_5m(time), stream,
                   consumer_group, max(length), max(coalesce(pending, 0) + coalesce(lag, 0))
            FROM new_rows
            GROUP BY 1, 2, 3
            ORDER BY 1, 2, 3
            ON CONFLICT (bucket, stream, consumer_group) DO UPDATE SET
                max_length = greatest(r.max_length, excluded.max_length),
                max_backlog = greatest(r.max_backlog, excluded.max_backlog);
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM ws_stream_stats_5m_rebuild(ARRAY(
                SELECT ws_bucket_5m(time)
                FROM old_rows
                UNION
                SELECT ws_bucket_5m(time)
                FROM new_rows));
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM ws_stream_stats_5m_rebuild(ARRAY(
                SELECT DISTINCT ws_bucket_5m(time)
                FROM old_rows));
        ELSE
            TRUNCATE stream_stats_5m;
        END IF;
        RETURN NULL;
    END
    $fn$;

    CREATE OR REPLACE TRIGGER stream_stats_5m_insert AFTER INSERT ON stream_stats
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_stream_stats_5m_apply();
    CREATE OR REPLACE TRIGGER stream_stats_5m_update AFTER UPDATE ON stream_stats
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_stream_stats_5m_apply();
    CREATE OR REPLACE TRIGGER stream_stats_5m_delete AFTER DELETE ON stream_stats
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_stream_stats_5m_apply();
    CREATE OR REPLACE TRIGGER stream_stats_5m_truncate AFTER TRUNCATE ON stream_stats
        FOR EACH STATEMENT EXECUTE FUNCTION ws_stream_stats_5m_apply();

    -- the history so far (the triggers above already lock out writers until commit)
    INSERT INTO stream_stats_5m (bucket, stream, consumer_group, max_length, max_backlog)
    SELECT ws_bucket_5m(time), stream,
           consumer_group, max(length), max(coalesce(pending, 0) + coalesce(lag, 0))
    FROM stream_stats
    GROUP BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    ANALYZE stream_stats_5m;  -- the panels' first plans see its real size
END
$$;


-- ===========================================================================================
-- fast_price_movers_5m / oi_volume_spikes_5m: scanner hits every 5 minutes
-- ===========================================================================================

SELECT ws_create_continuous_aggregate('fast_price_movers_5m', $cagg$
    SELECT time_bucket('5 minutes', time) AS bucket, direction, count(*) AS movers
    FROM fast_price_movers
    GROUP BY time_bucket('5 minutes', time), direction
$cagg$, '5 minutes', '5 minutes');

SELECT ws_create_continuous_aggregate('oi_volume_spikes_5m', $cagg$
    SELECT time_bucket('5 minutes', time) AS bucket, is_oi_spike, is_volume_spike,
           count(*) AS spikes
    FROM oi_volume_spikes
    GROUP BY time_bucket('5 minutes', time), is_oi_spike, is_volume_spike
$cagg$, '5 minutes', '5 minutes');

DO $$
BEGIN
    IF ws_timescale_enabled() THEN
        RETURN;
    END IF;

    CREATE TABLE IF NOT EXISTS fast_price_movers_5m (
        bucket     timestamptz NOT NULL,        -- start of the 5-minute bucket
        direction  text,                        -- 'up' | 'down' (NULL kept as its own group)
        movers     bigint      NOT NULL,        -- fast_price_movers rows in the bucket
        UNIQUE NULLS NOT DISTINCT (bucket, direction)
    );
    COMMENT ON TABLE fast_price_movers_5m IS
        'fast_price_movers rows per 5 minutes and direction; kept by triggers on '
        'fast_price_movers (a continuous aggregate under TimescaleDB)';

    CREATE TABLE IF NOT EXISTS oi_volume_spikes_5m (
        bucket           timestamptz NOT NULL,  -- start of the 5-minute bucket
        is_oi_spike      boolean     NOT NULL,
        is_volume_spike  boolean     NOT NULL,
        spikes           bigint      NOT NULL,  -- oi_volume_spikes rows in the bucket
        PRIMARY KEY (bucket, is_oi_spike, is_volume_spike)
    );
    COMMENT ON TABLE oi_volume_spikes_5m IS
        'oi_volume_spikes rows per 5 minutes and spike kind; kept by triggers on '
        'oi_volume_spikes (a continuous aggregate under TimescaleDB)';

    -- Counts move by deltas: +inserted, -deleted, -old +new on update. The scanner re-upserts
    -- a scan minute's rows (ON CONFLICT DO UPDATE), which fires both the INSERT and the UPDATE
    -- trigger; deltas make their order irrelevant. Buckets that fall to 0 rows are removed.
    -- The history so far is added after the triggers (which lock out writers until commit).
    CREATE OR REPLACE FUNCTION ws_fast_price_movers_5m_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            WITH delta (bucket, direction, n) AS (
                SELECT ws_bucket_5m(time), direction, count(*)
                FROM new_rows GROUP BY 1, 2
            )
            INSERT INTO fast_price_movers_5m AS r (bucket, direction, movers)
            SELECT * FROM delta ORDER BY 1, 2
            ON CONFLICT (bucket, direction) DO UPDATE SET movers = r.movers + excluded.movers;
        ELSIF TG_OP = 'UPDATE' THEN
            WITH delta (bucket, direction, n) AS (
                SELECT ws_bucket_5m(time), direction, sum(n)
                FROM (SELECT time, direction, 1 AS n FROM new_rows
                      UNION ALL
                      SELECT time, direction, -1 FROM old_rows) d
                GROUP BY 1, 2 HAVING sum(n) <> 0
            )
            INSERT INTO fast_price_movers_5m AS r (bucket, direction, movers)
            SELECT * FROM delta ORDER BY 1, 2
            ON CONFLICT (bucket, direction) DO UPDATE SET movers = r.movers + excluded.movers;
            DELETE FROM fast_price_movers_5m
            WHERE movers = 0 AND bucket IN (SELECT ws_bucket_5m(time) FROM old_rows);
        ELSIF TG_OP = 'DELETE' THEN
            WITH delta (bucket, direction, n) AS (
                SELECT ws_bucket_5m(time), direction, -count(*)
                FROM old_rows GROUP BY 1, 2
            )
            INSERT INTO fast_price_movers_5m AS r (bucket, direction, movers)
            SELECT * FROM delta ORDER BY 1, 2
            ON CONFLICT (bucket, direction) DO UPDATE SET movers = r.movers + excluded.movers;
            DELETE FROM fast_price_movers_5m
            WHERE movers = 0 AND bucket IN (SELECT ws_bucket_5m(time) FROM old_rows);
        ELSE
            TRUNCATE fast_price_movers_5m;
        END IF;
        RETURN NULL;
    END
    $fn$;

    CREATE OR REPLACE TRIGGER fast_price_movers_5m_insert AFTER INSERT ON fast_price_movers
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_fast_price_movers_5m_apply();
    CREATE OR REPLACE TRIGGER fast_price_movers_5m_update AFTER UPDATE ON fast_price_movers
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_fast_price_movers_5m_apply();
    CREATE OR REPLACE TRIGGER fast_price_movers_5m_delete AFTER DELETE ON fast_price_movers
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_fast_price_movers_5m_apply();
    CREATE OR REPLACE TRIGGER fast_price_movers_5m_truncate AFTER TRUNCATE ON fast_price_movers
        FOR EACH STATEMENT EXECUTE FUNCTION ws_fast_price_movers_5m_apply();

    INSERT INTO fast_price_movers_5m (bucket, direction, movers)
    SELECT ws_bucket_5m(time), direction, count(*)
    FROM fast_price_movers
    GROUP BY 1, 2;

    CREATE OR REPLACE FUNCTION ws_oi_volume_spikes_5m_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            WITH delta (bucket, is_oi_spike, is_volume_spike, n) AS (
                SELECT ws_bucket_5m(time), is_oi_spike, is_volume_spike, count(*)
                FROM new_rows GROUP BY 1, 2, 3
            )
            INSERT INTO oi_volume_spikes_5m AS r (bucket, is_oi_spike, is_volume_spike, spikes)
            SELECT * FROM delta ORDER BY 1, 2, 3
            ON CONFLICT (bucket, is_oi_spike, is_volume_spike) DO UPDATE
                SET spikes = r.spikes + excluded.spikes;
        ELSIF TG_OP = 'UPDATE' THEN
            WITH delta (bucket, is_oi_spike, is_volume_spike, n) AS (
                SELECT ws_bucket_5m(time), is_oi_spike, is_volume_spike, sum(n)
                FROM (SELECT time, is_oi_spike, is_volume_spike, 1 AS n FROM new_rows
                      UNION ALL
                      SELECT time, is_oi_spike, is_volume_spike, -1 FROM old_rows) d
                GROUP BY 1, 2, 3 HAVING sum(n) <> 0
            )
            INSERT INTO oi_volume_spikes_5m AS r (bucket, is_oi_spike, is_volume_spike, spikes)
            SELECT * FROM delta ORDER BY 1, 2, 3
            ON CONFLICT (bucket, is_oi_spike, is_volume_spike) DO UPDATE
                SET spikes = r.spikes + excluded.spikes;
            DELETE FROM oi_volume_spikes_5m
            WHERE spikes = 0 AND bucket IN (SELECT ws_bucket_5m(time) FROM old_rows);
        ELSIF TG_OP = 'DELETE' THEN
            WITH delta (bucket, is_oi_spike, is_volume_spike, n) AS (
                SELECT ws_bucket_5m(time), is_oi_spike, is_volume_spike, -count(*)
                FROM old_rows GROUP BY 1, 2, 3
            )
            INSERT INTO oi_volume_spikes_5m AS r (bucket, is_oi_spike, is_volume_spike, spikes)
            SELECT * FROM delta ORDER BY 1, 2, 3
            ON CONFLICT (bucket, is_oi_spike, is_volume_spike) DO UPDATE
                SET spikes = r.spikes + excluded.spikes;
            DELETE FROM oi_volume_spikes_5m
            WHERE spikes = 0 AND bucket IN (SELECT ws_bucket_5m(time) FROM old_rows);
        ELSE
            TRUNCATE oi_volume_spikes_5m;
        END IF;
        RETURN NULL;
    END
    $fn$;

    CREATE OR REPLACE TRIGGER oi_volume_spikes_5m_insert AFTER INSERT ON oi_volume_spikes
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_oi_volume_spikes_5m_apply();
    CREATE OR REPLACE TRIGGER oi_volume_spikes_5m_update AFTER UPDATE ON oi_volume_spikes
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_oi_volume_spikes_5m_apply();
    CREATE OR REPLACE TRIGGER oi_volume_spikes_5m_delete AFTER DELETE ON oi_volume_spikes
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ws_oi_volume_spikes_5m_apply();
    CREATE OR REPLACE TRIGGER oi_volume_spikes_5m_truncate AFTER TRUNCATE ON oi_volume_spikes
        FOR EACH STATEMENT EXECUTE FUNCTION ws_oi_volume_spikes_5m_apply();

    INSERT INTO oi_volume_spikes_5m (bucket, is_oi_spike, is_volume_spike, spikes)
    SELECT ws_bucket_5m(time), is_oi_spike, is_volume_spike, count(*)
    FROM oi_volume_spikes
    GROUP BY 1, 2, 3;
    ANALYZE fast_price_movers_5m, oi_volume_spikes_5m;
END
$$;


-- ===========================================================================================
-- Grafana reads the rollups (and, for short ranges, the raw tables it already reads)
-- ===========================================================================================

GRANT SELECT ON stream_stats_5m, fast_price_movers_5m, oi_volume_spikes_5m TO grafana_reader;
