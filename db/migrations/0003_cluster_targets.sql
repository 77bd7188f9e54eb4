-- 0003_cluster_targets.sql
-- cluster_targets: the target cluster (largest on the bias side) of each coin x timeframe,
-- sampled once per PATTERN_SAMPLE_INTERVAL_MIN by the cluster scanner, and later judged
-- against the candles: did price reach the cluster's near edge within the horizon?
--
-- Why a table of its own: success rates and the typical cluster size need "the target of
-- each past scan". Deriving that from liquidation_clusters (every cluster of every scan)
-- means re-reading millions of rows per update; this sample is ~9 rows per coin per hour,
-- and each target is judged once (outcome stays), so updates are incremental.

CREATE TABLE IF NOT EXISTS cluster_targets (
    time             timestamptz NOT NULL,          -- sample bucket start (one row per bucket)
    symbol           text        NOT NULL,
    timeframe        text        NOT NULL
                     CHECK (timeframe IN ('12h','24h','3d','7d','14d','30d','90d','180d','1y')),
    scan_time        timestamptz NOT NULL,          -- the liquidation_clusters scan it came from
    levels_time      timestamptz,                   -- liquidation_levels snapshot behind it
    side             text        NOT NULL CHECK (side IN ('long', 'short')),  -- liquidated side:
                                                    -- 'short' = above price (LONG bias), 'long' = below
    price_low        numeric     NOT NULL,
    price_high       numeric     NOT NULL,
    value_usd        numeric     NOT NULL,          -- cluster value (USD)
    ref_price        numeric     NOT NULL,          -- market price at scan time
    edge             numeric     NOT NULL,          -- near edge: price_low above price, price_high below
    imbalance        numeric,                       -- RATIO 0..1 of this timeframe at scan time
    outcome          text        CHECK (outcome IN ('win', 'loss')),  -- NULL until judged
    reached_at       timestamptz,                   -- first 1-min candle touching the edge (wins)
    horizon_s        int,                           -- horizon it was judged with
    judged_at        timestamptz,
    scanner          text        NOT NULL,
    scanner_version  text        NOT NULL,
    PRIMARY KEY (symbol, timeframe, time)
);
COMMENT ON TABLE cluster_targets IS
    'Sampled target cluster per coin x timeframe and its outcome (reached within the horizon or not)';
SELECT ws_create_hypertable('cluster_targets', 'time', '7 days');
CREATE INDEX IF NOT EXISTS cluster_targets_time_idx ON cluster_targets (time DESC);
CREATE INDEX IF NOT EXISTS cluster_targets_pending_idx ON cluster_targets (scan_time)
    WHERE outcome IS NULL;
