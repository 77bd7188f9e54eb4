-- 0002_perps_schema.sql
-- The perps vertical: market data, liquidation heatmaps, scanners' output, rankings,
-- signals, orders, trades, position monitor, equity, broadcasts, affiliate clicks.
--
-- Conventions (see SPEC §5):
--   * Hypertables have `time` as their first column, and `time` is part of every primary /
--     unique key (TimescaleDB requires the partition column in unique indexes).
--   * Every table has a natural key so writers can INSERT ... ON CONFLICT (key) and a
--     re-delivered message or re-fetched page never doubles a row.
--   * Money / prices / quantities: numeric. Percentages are stored AS PERCENT (2.5 = 2.5 %);
--     those columns end in _pct (or are commented "percent"). Ratios (0..1) and multiples
--     (1.5 = 1.5x) are commented as such.
--   * Heatmap timeframes: '12h','24h','3d','7d','14d','30d','90d','180d','1y'.
--   * Provenance: rows carry `source` (data origin: 'bybit','coinglass','sim','estimate',...)
--     or `agent` / `scanner` + version (who decided), and `vertical` where rows can belong
--     to either vertical.
--   * TimescaleDB-only statements go through the ws_* helpers of 0001 (no-ops on plain PG).
--     Time indexes are created explicitly (the helper turns TimescaleDB's defaults off).


-- ===========================================================================================
-- Market data (collector: market)
-- ===========================================================================================

-- ohlcv: candles; 1-minute from the live collector, other intervals from backfills
CREATE TABLE IF NOT EXISTS ohlcv (
    time        timestamptz NOT NULL,               -- candle open time
    symbol      text        NOT NULL,               -- e.g. 'BTCUSDT'
    interval    text        NOT NULL
                CHECK (interval IN ('1m','3m','5m','15m','30m','1h','2h','4h','6h','12h','1d','1w','1M')),
    open        numeric     NOT NULL,
    high        numeric     NOT NULL,
    low         numeric     NOT NULL,
    close       numeric     NOT NULL,
    volume      numeric     NOT NULL,               -- base-asset quantity
    turnover    numeric,                            -- quote (USDT) value
    source      text        NOT NULL,               -- 'bybit' | 'sim' | ...
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, interval, time)            -- also the "latest candle per symbol x interval" index
);
COMMENT ON TABLE ohlcv IS 'OHLCV candles per symbol x interval (hypertable); key (symbol, interval, time)';
SELECT ws_create_hypertable('ohlcv', 'time', '1 day');
CREATE INDEX IF NOT EXISTS ohlcv_time_idx        ON ohlcv (time DESC);
SELECT ws_add_compression('ohlcv', 'symbol', '7 days');

-- market_snapshots: per-minute state of every coin
CREATE TABLE IF NOT EXISTS market_snapshots (
    time                 timestamptz NOT NULL,      -- snapshot minute
    symbol               text        NOT NULL,
    price                numeric     NOT NULL,      -- last traded price
    mark_price           numeric,
    index_price          numeric,
    bid_price            numeric,
    ask_price            numeric,
    open_interest        numeric,                   -- contracts (base asset)
    open_interest_value  numeric,                   -- quote (USD)
    volume_24h           numeric,                   -- base asset
    turnover_24h         numeric,                   -- quote (USD)
    high_24h             numeric,
    low_24h              numeric,
    price_change_24h_pct numeric,                   -- percent
    funding_rate_pct     numeric,                   -- percent per funding interval (venue 0.0001 -> 0.01)
    next_funding_at      timestamptz,
    source               text        NOT NULL,      -- 'bybit' | 'sim' | ...
    ingested_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, time)                      -- also the "latest snapshot per symbol" index
);
COMMENT ON TABLE market_snapshots IS 'Per-minute price / OI / volume / funding per coin (hypertable); key (symbol, time)';
SELECT ws_create_hypertable('market_snapshots', 'time', '1 day');
CREATE INDEX IF NOT EXISTS market_snapshots_time_idx ON market_snapshots (time DESC);
SELECT ws_add_compression('market_snapshots', 'symbol', '7 days');

-- liquidation_events: real (or simulated) forced liquidations as they happen
CREATE TABLE IF NOT EXISTS liquidation_events (
    time        timestamptz NOT NULL,               -- venue event time
    event_key   text        NOT NULL,               -- venue id, or a hash of (symbol, time, side, price, qty)
    symbol      text        NOT NULL,
    side        text        NOT NULL CHECK (side IN ('long', 'short')),  -- side of the LIQUIDATED position
                                                    -- (Bybit allLiquidation S='Buy' -> 'long')
    price       numeric     NOT NULL,
    qty         numeric     NOT NULL,               -- base asset
    value_usd   numeric,                            -- price x qty
    source      text        NOT NULL,               -- 'bybit' | 'sim' | ...
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_key, time)
);
COMMENT ON TABLE liquidation_events IS 'Individual liquidation events (hypertable); key (event_key, time)';
SELECT ws_create_hypertable('liquidation_events', 'time', '1 day');
CREATE INDEX IF NOT EXISTS liquidation_events_time_idx        ON liquidation_events (time DESC);
CREATE INDEX IF NOT EXISTS liquidation_events_symbol_time_idx ON liquidation_events (symbol, time DESC);


-- ===========================================================================================
-- Liquidation heatmaps (collector: liquidations)
-- ===========================================================================================

-- liquidation_levels: one heatmap snapshot = all price levels of one symbol x timeframe x
-- source at one refresh time. The biggest table by far (500 coins x 9 timeframes x ~400
-- levels every 5 minutes), so it is kept narrow.
CREATE TABLE IF NOT EXISTS liquidation_levels (
    time        timestamptz NOT NULL,               -- snapshot (refresh) time
    symbol      text        NOT NULL,
    timeframe   text        NOT NULL
                CHECK (timeframe IN ('12h','24h','3d','7d','14d','30d','90d','180d','1y')),
    source      text        NOT NULL,               -- 'coinglass' | 'sim' | 'estimate'
    side        text        NOT NULL CHECK (side IN ('long', 'short')),  -- positions liquidated there:
                                                    -- longs below price, shorts above
    price       numeric     NOT NULL,               -- level price
    value_usd   numeric     NOT NULL,               -- liquidation value at this level (USD)
    leverage    numeric,                            -- dominant leverage tier, when the source knows it
    -- The key leads with (symbol, timeframe, time), so it is also the "latest snapshot per
    -- symbol x timeframe" index; no separate (symbol, time) index, to keep ingest cheap.
    PRIMARY KEY (symbol, timeframe, time, source, side, price)
);
COMMENT ON TABLE liquidation_levels IS
    'Liquidation heatmap levels per snapshot x symbol x timeframe x source (hypertable)';
SELECT ws_create_hypertable('liquidation_levels', 'time', '1 day');
CREATE INDEX IF NOT EXISTS liquidation_levels_time_idx        ON liquidation_levels (time DESC);
SELECT ws_add_compression('liquidation_levels', 'symbol', '7 days');

-- liquidation_refreshes: freshness of each heatmap (plain, one row per key, upserted)
CREATE TABLE IF NOT EXISTS liquidation_refreshes (
    symbol        text        NOT NULL,
    timeframe     text        NOT NULL
                  CHECK (timeframe IN ('12h','24h','3d','7d','14d','30d','90d','180d','1y')),
    source        text        NOT NULL,             -- 'coinglass' | 'sim' | 'estimate'
    refreshed_at  timestamptz NOT NULL,             -- last successful refresh (= liquidation_levels.time written)
    level_count   int         NOT NULL,             -- levels written by that refresh
    duration_ms   int,                              -- fetch + write time of that refresh
    trigger       text,                             -- 'schedule' | 'spike' | 'pre_trade' | 'manual'
    agent         text,                             -- collector instance that did it
    PRIMARY KEY (symbol, timeframe, source)
);
COMMENT ON TABLE liquidation_refreshes IS
    'Heatmap freshness per symbol x timeframe x source: last refresh time, level count, duration';
CREATE INDEX IF NOT EXISTS liquidation_refreshes_refreshed_idx ON liquidation_refreshes (refreshed_at);


-- ===========================================================================================
-- Scanner registry (provenance)
-- ===========================================================================================

CREATE TABLE IF NOT EXISTS scanners (
    name          text        NOT NULL,             -- e.g. 'spikes', 'clusters', 'ranker'
    version       text        NOT NULL,             -- bump when logic or params change
    params        jsonb       NOT NULL DEFAULT '{}',
    params_hash   text        NOT NULL,             -- hash of the canonical params JSON
    description   text,
    vertical      text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly', 'system')),
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz,                      -- last time a running instance registered it
    PRIMARY KEY (name, version)
);
COMMENT ON TABLE scanners IS 'Registry of scanners / agents: name, version, parameters (+ hash)';


-- ===========================================================================================
-- Scanner output (scanner: clusters/history, scanner: movers/spikes)
-- ===========================================================================================

-- liquidation_clusters: adjacent heatmap levels merged into clusters, each scan
CREATE TABLE IF NOT EXISTS liquidation_clusters (
    time                 timestamptz NOT NULL,      -- scan time
    symbol               text        NOT NULL,
    timeframe            text        NOT NULL
                         CHECK (timeframe IN ('12h','24h','3d','7d','14d','30d','90d','180d','1y')),
    side                 text        NOT NULL CHECK (side IN ('long', 'short')),  -- liquidated side (longs below, shorts above)
    price_low            numeric     NOT NULL,
    price_high           numeric     NOT NULL,
    center               numeric     NOT NULL,      -- value-weighted centre price
    value_usd            numeric     NOT NULL,      -- total liquidation value in the cluster
    level_count          int         NOT NULL,
    ref_price            numeric,                   -- market price at scan time
    distance_pct         numeric,                   -- percent, (center - ref_price) / ref_price x 100 (signed)
    size_pct_of_typical  numeric,                   -- percent of coin_thresholds.typical_cluster_usd (159 = 1.59x)
    source               text,                      -- heatmap source the levels came from
    levels_time          timestamptz,               -- liquidation_levels snapshot used
    scanner              text        NOT NULL,
    scanner_version      text        NOT NULL,
    PRIMARY KEY (symbol, timeframe, time, side, center)
);
COMMENT ON TABLE liquidation_clusters IS
    'Liquidation clusters per scan x symbol x timeframe x side (hypertable); key (symbol, timeframe, side, center, time)';
SELECT ws_create_hypertable('liquidation_clusters', 'time', '1 day');
CREATE INDEX IF NOT EXISTS liquidation_clusters_time_idx        ON liquidation_clusters (time DESC);
CREATE INDEX IF NOT EXISTS liquidation_clusters_symbol_time_idx ON liquidation_clusters (symbol, time DESC);

-- coin_thresholds: coin-specific yardsticks (plain, one row per coin, upserted)
CREATE TABLE IF NOT EXISTS coin_thresholds (
    symbol                  text        PRIMARY KEY,
    typical_cluster_usd     numeric,                -- typical (e.g. median) cluster value, USD
    price_move_1m_p95_pct   numeric,                -- percent, 95th percentile of |1-min price change|
    price_move_1m_p99_pct   numeric,                -- percent
    price_move_5m_p95_pct   numeric,                -- percent
    price_move_5m_p99_pct   numeric,                -- percent
    oi_change_15m_p95_pct   numeric,                -- percent, of |15-min OI change|
    oi_change_15m_p99_pct   numeric,                -- percent
    volume_ratio_5m_p95     numeric,                -- multiple: 5-min volume / 1-h average (1.5 = 1.5x)
    volume_ratio_5m_p99     numeric,                -- multiple
    samples                 int,                    -- observations behind the percentiles
    window_start            timestamptz,            -- history window used
    window_end              timestamptz,
    stats                   jsonb       NOT NULL DEFAULT '{}',  -- anything else (mean/std for z-scores, ...)
    updated_at              timestamptz NOT NULL DEFAULT now(),
    scanner                 text        NOT NULL,
    scanner_version         text        NOT NULL
);
COMMENT ON TABLE coin_thresholds IS
    'Per-coin typical cluster size and spike percentiles (coin-specific thresholds)';

-- coin_liquidation_patterns: how each coin x timeframe behaved historically around clusters
CREATE TABLE IF NOT EXISTS coin_liquidation_patterns (
    symbol                text        NOT NULL,
    timeframe             text        NOT NULL
                          CHECK (timeframe IN ('12h','24h','3d','7d','14d','30d','90d','180d','1y')),
    success_rate          numeric     CHECK (success_rate BETWEEN 0 AND 1),  -- RATIO 0..1 (not percent): share of
                                                    -- clusters price reached within the horizon (score uses x 20)
    samples               int         NOT NULL DEFAULT 0,
    wins                  int         NOT NULL DEFAULT 0,
    losses                int         NOT NULL DEFAULT 0,
    horizon_s             int,                      -- horizon used to judge "reached"
    avg_time_to_target_s  numeric,
    max_wick_up_pct       numeric,                  -- percent
    max_wick_down_pct     numeric,                  -- percent
    wick_p50_up           numeric,                  -- percent, median upper wick
    wick_p95_up           numeric,                  -- percent
    wick_p50_down         numeric,                  -- percent
    wick_p95_down         numeric,                  -- percent
    updated_at            timestamptz NOT NULL DEFAULT now(),
    agent                 text        NOT NULL,     -- last writer: history scanner or position monitor
    agent_version         text,
    PRIMARY KEY (symbol, timeframe)
);
COMMENT ON TABLE coin_liquidation_patterns IS
    'Per coin x timeframe: cluster success rate, time-to-target, wick extremes and percentiles';

-- oi_volume_spikes: OI / volume spikes, one row per symbol x mode x scan minute
CREATE TABLE IF NOT EXISTS oi_volume_spikes (
    time                      timestamptz NOT NULL, -- scan time
    symbol                    text        NOT NULL,
    mode                      text        NOT NULL CHECK (mode IN ('fixed', 'coin_specific')),
    oi_change_15m_pct         numeric,              -- percent, measured
    volume_5m                 numeric,              -- quote volume in the last 5 min
    volume_1h_avg_5m          numeric,              -- average 5-min volume over the last hour
    volume_ratio              numeric,              -- multiple: volume_5m / volume_1h_avg_5m
    price_change_5m_pct       numeric,              -- percent, measured
    oi_threshold_pct          numeric,              -- percent, threshold used
    volume_ratio_threshold    numeric,              -- multiple, threshold used
    oi_zscore                 numeric,              -- coin_specific mode
    volume_zscore             numeric,
    oi_percentile             numeric,              -- percent (0..100) rank in the coin's own history
    volume_percentile         numeric,              -- percent (0..100)
    is_oi_spike               boolean     NOT NULL DEFAULT false,
    is_volume_spike           boolean     NOT NULL DEFAULT false,
    refresh_requested         boolean     NOT NULL DEFAULT false,  -- a heatmap refresh was published
    scanner                   text        NOT NULL,
    scanner_version           text        NOT NULL,
    inputs                    jsonb       NOT NULL DEFAULT '{}',   -- what the scanner saw (replayable)
    PRIMARY KEY (symbol, mode, time)
);
COMMENT ON TABLE oi_volume_spikes IS 'OI / volume spikes per scan, fixed and coin-specific modes (hypertable)';
SELECT ws_create_hypertable('oi_volume_spikes', 'time', '7 days');
CREATE INDEX IF NOT EXISTS oi_volume_spikes_time_idx        ON oi_volume_spikes (time DESC);
CREATE INDEX IF NOT EXISTS oi_volume_spikes_symbol_time_idx ON oi_volume_spikes (symbol, time DESC);

-- fast_price_movers: 1-min / 5-min price movers, one row per symbol x mode x scan minute
CREATE TABLE IF NOT EXISTS fast_price_movers (
    time                   timestamptz NOT NULL,    -- scan time
    symbol                 text        NOT NULL,
    mode                   text        NOT NULL CHECK (mode IN ('fixed', 'coin_specific')),
    direction              text        CHECK (direction IN ('up', 'down')),
    price                  numeric,                 -- price at scan time
    price_change_1m_pct    numeric,                 -- percent, measured
    price_change_5m_pct    numeric,                 -- percent, measured
    threshold_1m_pct       numeric,                 -- percent, threshold used
    threshold_5m_pct       numeric,                 -- percent, threshold used
    trigger_window         text        CHECK (trigger_window IN ('1m', '5m', 'both')),
    zscore_1m              numeric,                 -- coin_specific mode
    zscore_5m              numeric,
    percentile_1m          numeric,                 -- percent (0..100)
    percentile_5m          numeric,                 -- percent (0..100)
    refresh_requested      boolean     NOT NULL DEFAULT false,
    scanner                text        NOT NULL,
    scanner_version        text        NOT NULL,
    inputs                 jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (symbol, mode, time)
);
COMMENT ON TABLE fast_price_movers IS 'Fast price movers per scan, fixed and coin-specific modes (hypertable)';
SELECT ws_create_hypertable('fast_price_movers', 'time', '7 days');
CREATE INDEX IF NOT EXISTS fast_price_movers_time_idx        ON fast_price_movers (time DESC);
CREATE INDEX IF NOT EXISTS fast_price_movers_symbol_time_idx ON fast_price_movers (symbol, time DESC);


-- ===========================================================================================
-- Ranker: rankings and trade signals
-- ===========================================================================================

-- coin_rankings: the top N (10) of every ranking cycle
CREATE TABLE IF NOT EXISTS coin_rankings (
    time              timestamptz NOT NULL,         -- cycle time (same for every row of a cycle)
    cycle_id          text        NOT NULL,         -- one id per ranking cycle (leader failover: never two sets)
    rank              int         NOT NULL CHECK (rank >= 1),
    symbol            text        NOT NULL,
    score             numeric     NOT NULL,
    imbalance         numeric,                      -- RATIO 0..1: shorts_above / (shorts_above + longs_below)
    imbalance_strength numeric,                     -- RATIO 0..1: |imbalance - 0.5| x 2
    direction         text        CHECK (direction IN ('long', 'short')),
    cluster_size_pct  numeric,                      -- percent of the coin's typical cluster size
    success_rate      numeric,                      -- RATIO 0..1
    target_price      numeric,                      -- target cluster centre
    price             numeric,                      -- market price at ranking time
    scanner           text        NOT NULL,
    scanner_version   text        NOT NULL,
    inputs            jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (cycle_id, rank, time),
    UNIQUE (cycle_id, symbol, time)
);
COMMENT ON TABLE coin_rankings IS 'Top-N coins of every ranking cycle with score parts (hypertable)';
SELECT ws_create_hypertable('coin_rankings', 'time', '7 days');
CREATE INDEX IF NOT EXISTS coin_rankings_time_idx        ON coin_rankings (time DESC);
CREATE INDEX IF NOT EXISTS coin_rankings_symbol_time_idx ON coin_rankings (symbol, time DESC);

-- signals: trade signals published by the ranker's trigger
CREATE TABLE IF NOT EXISTS signals (
    time                 timestamptz NOT NULL,      -- signal time
    signal_id            uuid        NOT NULL,
    symbol               text        NOT NULL,
    direction            text        NOT NULL CHECK (direction IN ('long', 'short')),
    score                numeric,
    rank                 int,
    cycle_id             text,                      -- coin_rankings cycle it came from
    entry_mode           text        CHECK (entry_mode IN ('conservative', 'aggressive', 'scaled')),
    entry_price          numeric,                   -- planned entry (ladder: first / reference price)
    entry_price_low      numeric,                   -- scaled ladder range
    entry_price_high     numeric,
    stop_loss            numeric,
    take_profit          numeric,
    target_price         numeric,                   -- target cluster centre
    price                numeric,                   -- market price at signal time
    imbalance            numeric,                   -- RATIO 0..1
    cluster_size_pct     numeric,                   -- percent of typical
    success_rate         numeric,                   -- RATIO 0..1
    oi_change_15m_pct    numeric,                   -- percent, trigger value
    volume_ratio_5m      numeric,                   -- multiple, trigger value
    price_change_5m_pct  numeric,                   -- percent, trigger value
    scanner              text        NOT NULL,
    scanner_version      text        NOT NULL,
    agent                text        NOT NULL,      -- service / agent that published it
    vertical             text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    correlation_id       text,
    status               text        NOT NULL DEFAULT 'new',  -- 'new' | 'accepted' | 'rejected' | 'skipped'
                                                              -- | 'traded' | 'expired'
    status_reason        text,
    inputs               jsonb       NOT NULL DEFAULT '{}',   -- everything needed to replay the decision
    PRIMARY KEY (signal_id, time)
);
COMMENT ON TABLE signals IS 'Trade signals with full provenance (scanner, version, inputs) (hypertable)';
SELECT ws_create_hypertable('signals', 'time', '7 days');
CREATE INDEX IF NOT EXISTS signals_time_idx         ON signals (time DESC);
CREATE INDEX IF NOT EXISTS signals_symbol_time_idx  ON signals (symbol, time DESC);
CREATE INDEX IF NOT EXISTS signals_scanner_time_idx ON signals (scanner, scanner_version, time DESC);


-- ===========================================================================================
-- Execution: orders, order events, trades (autotrader)
-- ===========================================================================================

-- orders: one row per order at the venue, current state (plain, upserted)
CREATE TABLE IF NOT EXISTS orders (
    order_link_id   text        PRIMARY KEY CHECK (char_length(order_link_id) <= 36),  -- Bybit orderLinkId,
                                                    -- derived from the signal id (+ ladder index)
    venue_order_id  text,                           -- Bybit orderId once accepted
    venue           text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    signal_id       uuid,
    trade_id        uuid,                           -- trades.trade_id
    symbol          text        NOT NULL,
    side            text        NOT NULL CHECK (side IN ('Buy', 'Sell')),
    order_type      text        NOT NULL CHECK (order_type IN ('Market', 'Limit')),
    qty             numeric     NOT NULL,
    price           numeric,                        -- NULL for market orders
    trigger_price   numeric,                        -- conditional orders
    time_in_force   text,                           -- 'GTC' | 'IOC' | 'FOK' | 'PostOnly'
    reduce_only     boolean     NOT NULL DEFAULT false,
    ladder_index    int,                            -- position in a scaled ladder (0-based), else NULL
    stop_loss       numeric,                        -- SL/TP attached to the order, if any
    take_profit     numeric,
    status          text        NOT NULL,           -- Bybit v5 orderStatus vocabulary ('New', 'PartiallyFilled',
                                                    -- 'Filled', 'Cancelled', 'Rejected', ...) + 'Created' before the ack
    filled_qty      numeric     NOT NULL DEFAULT 0,
    avg_fill_price  numeric,
    fee             numeric     NOT NULL DEFAULT 0, -- quote currency
    reject_reason   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    agent           text        NOT NULL,
    vertical        text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    raw             jsonb       NOT NULL DEFAULT '{}',  -- last venue payload
    UNIQUE (venue, venue_order_id)                  -- NULLs (not yet acknowledged) do not collide
);
COMMENT ON TABLE orders IS 'Orders at the venue, current state; key orderLinkId (derived from the signal id)';
CREATE INDEX IF NOT EXISTS orders_signal_idx  ON orders (signal_id);
CREATE INDEX IF NOT EXISTS orders_trade_idx   ON orders (trade_id);
CREATE INDEX IF NOT EXISTS orders_symbol_created_idx ON orders (symbol, created_at DESC);
CREATE INDEX IF NOT EXISTS orders_open_idx    ON orders (venue, symbol)
    WHERE status IN ('Created', 'New', 'PartiallyFilled', 'Untriggered');

-- order_events: every state change of an order (hypertable, append-only)
CREATE TABLE IF NOT EXISTS order_events (
    time            timestamptz NOT NULL,           -- venue update time (or ours for local transitions)
    order_link_id   text        NOT NULL,
    status          text        NOT NULL,           -- same vocabulary as orders.status
    venue_order_id  text,
    filled_qty      numeric,                        -- cumulative after this event
    avg_fill_price  numeric,
    fee             numeric,                        -- cumulative, quote currency
    agent           text,                           -- who recorded it (autotrader, reconciler, ...)
    detail          jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_link_id, status, time)
);
COMMENT ON TABLE order_events IS 'Every state change of every order (hypertable); key (order_link_id, status, time)';
SELECT ws_create_hypertable('order_events', 'time', '7 days');
CREATE INDEX IF NOT EXISTS order_events_time_idx ON order_events (time DESC);

-- trades: one row per position (plain; opened, updated while open, closed)
CREATE TABLE IF NOT EXISTS trades (
    trade_id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    signal_id          uuid        UNIQUE,          -- NULL for manual trades
    external_id        text,                        -- venue id of an imported (manual) trade, for idempotent import
    agent              text        NOT NULL,        -- e.g. 'liquidation_hunter', 'manual'
    agent_version      text,
    scanner            text,                        -- scanner that produced the signal (NULL when manual)
    scanner_version    text,
    source             text        NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'manual')),
    venue              text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    vertical           text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    symbol             text        NOT NULL,
    direction          text        NOT NULL CHECK (direction IN ('long', 'short')),
    entry_mode         text        CHECK (entry_mode IN ('conservative', 'aggressive', 'scaled')),
    leverage           numeric,                     -- multiple (10 = 10x)
    qty                numeric,                     -- base asset, filled
    margin             numeric,                     -- quote currency committed
    entry_price        numeric,                     -- average fill
    exit_price         numeric,                     -- average exit fill
    stop_loss          numeric,                     -- current stop (moves with the trailing ladder)
    take_profit        numeric,
    initial_stop_loss  numeric,                     -- stop at entry (for R multiples)
    status             text        NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'open', 'closed', 'cancelled')),
    close_reason       text        CHECK (close_reason IN ('tp', 'sl', 'trailing_sl', 'liquidation', 'manual', 'cancelled')),
    pnl_quote          numeric,                     -- realised PnL in quote currency, after fees
    pnl_pct_price      numeric,                     -- percent, on price (exit vs entry, signed by direction)
    pnl_pct_margin     numeric,                     -- percent, on margin (= pnl_pct_price x leverage, net of fees)
    fees               numeric,                     -- quote currency (trading + funding)
    max_favorable_pct  numeric,                     -- percent on price, best excursion while open
    max_adverse_pct    numeric,                     -- percent on price, worst excursion while open
    opened_at          timestamptz,
    closed_at          timestamptz,
    notes              text,
    correlation_id     text,
    metadata           jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (venue, external_id)                     -- idempotent import of manual trades (NULLs do not collide)
);
COMMENT ON TABLE trades IS
    'One row per position: agent, scanner + version, signal, entry/exit, SL/TP, PnL % (price and margin)';
CREATE INDEX IF NOT EXISTS trades_status_closed_idx  ON trades (status, closed_at DESC);
CREATE INDEX IF NOT EXISTS trades_agent_closed_idx   ON trades (agent, closed_at);
CREATE INDEX IF NOT EXISTS trades_scanner_idx        ON trades (scanner, scanner_version);
CREATE INDEX IF NOT EXISTS trades_closed_at_idx      ON trades (closed_at DESC) WHERE closed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS trades_open_symbol_idx    ON trades (symbol) WHERE status IN ('pending', 'open');


-- ===========================================================================================
-- Position monitor and equity
-- ===========================================================================================

-- position_monitor_logs: trailing-stop moves, closes and other actions on open positions
CREATE TABLE IF NOT EXISTS position_monitor_logs (
    time            timestamptz NOT NULL,
    trade_id        uuid        NOT NULL,
    symbol          text        NOT NULL,
    action          text        NOT NULL,           -- 'stop_moved' | 'tp_moved' | 'closed' | 'close_detected' | ...
    old_stop        numeric,
    new_stop        numeric,
    price           numeric,                        -- market price when acting
    profit_pct      numeric,                        -- percent, measured on profit_basis
    profit_basis    text        CHECK (profit_basis IN ('price', 'margin')),
    ladder_step     int,                            -- trailing ladder step reached (1 = breakeven, ...)
    agent           text        NOT NULL,
    venue           text        CHECK (venue IN ('paper', 'testnet', 'live')),
    vertical        text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    correlation_id  text,
    detail          jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (trade_id, action, time)
);
COMMENT ON TABLE position_monitor_logs IS 'Stop moves, closes and other position-monitor actions (hypertable)';
SELECT ws_create_hypertable('position_monitor_logs', 'time', '7 days');
CREATE INDEX IF NOT EXISTS position_monitor_logs_time_idx        ON position_monitor_logs (time DESC);
CREATE INDEX IF NOT EXISTS position_monitor_logs_symbol_time_idx ON position_monitor_logs (symbol, time DESC);

-- equity_snapshots: account equity every minute (PnL % dashboards)
CREATE TABLE IF NOT EXISTS equity_snapshots (
    time                timestamptz NOT NULL,
    venue               text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    agent               text        NOT NULL,       -- trading agent, or 'account' for the whole venue account
    vertical            text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    equity              numeric     NOT NULL,       -- quote currency: balance + unrealised
    balance             numeric,                    -- quote currency, wallet balance
    unrealized_pnl      numeric,                    -- quote currency
    start_equity        numeric,                    -- reference for pnl_pct_from_start
    pnl_pct_from_start  numeric,                    -- percent
    open_positions      int,
    currency            text        NOT NULL DEFAULT 'USDT',
    PRIMARY KEY (venue, agent, time)
);
COMMENT ON TABLE equity_snapshots IS 'Equity per venue x agent every minute (hypertable); key (venue, agent, time)';
SELECT ws_create_hypertable('equity_snapshots', 'time', '7 days');
CREATE INDEX IF NOT EXISTS equity_snapshots_time_idx ON equity_snapshots (time DESC);


-- ===========================================================================================
-- Broadcasts and affiliate clicks (broadcaster)
-- ===========================================================================================

-- broadcasts: every send attempt (or decision not to send) per channel
CREATE TABLE IF NOT EXISTS broadcasts (
    time                 timestamptz NOT NULL,
    broadcast_id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_id             uuid        NOT NULL,      -- bus event that asked for it
    event_type           text        NOT NULL,      -- 'signal' | 'entry' | 'stop_moved' | 'exit' | 'digest' | ...
    channel              text        NOT NULL CHECK (channel IN ('telegram', 'x', 'email', 'sms')),
    status               text        NOT NULL
                         CHECK (status IN ('sent', 'failed', 'skipped', 'digested', 'rate_limited')),
    provider_message_id  text,
    error                text,
    attempts             int         NOT NULL DEFAULT 1,
    digest_id            uuid,                      -- broadcast_id of the digest that carried it (status 'digested')
    text                 text,
    agent                text        NOT NULL,      -- broadcaster instance / agent
    vertical             text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly', 'system')),
    correlation_id       text,
    PRIMARY KEY (channel, event_id, time)
);
COMMENT ON TABLE broadcasts IS 'Every broadcast attempt per channel: status, provider id, error (hypertable)';
SELECT ws_create_hypertable('broadcasts', 'time', '7 days');
CREATE INDEX IF NOT EXISTS broadcasts_time_idx         ON broadcasts (time DESC);
CREATE INDEX IF NOT EXISTS broadcasts_channel_time_idx ON broadcasts (channel, time DESC);
CREATE INDEX IF NOT EXISTS broadcasts_event_idx        ON broadcasts (event_id);

-- broadcast_dedup: "already sent to this channel" memory that survives restarts and replicas.
-- A plain table, because a hypertable's unique key must include time, which defeats dedup.
CREATE TABLE IF NOT EXISTS broadcast_dedup (
    channel        text        NOT NULL CHECK (channel IN ('telegram', 'x', 'email', 'sms')),
    dedup_key      text        NOT NULL,            -- e.g. 'signal:<signal_id>', 'exit:<trade_id>'
    first_sent_at  timestamptz NOT NULL DEFAULT now(),
    event_id       uuid,
    broadcast_id   uuid,
    PRIMARY KEY (channel, dedup_key)
);
COMMENT ON TABLE broadcast_dedup IS 'De-duplication keys per channel (INSERT ... ON CONFLICT DO NOTHING = claim)';
CREATE INDEX IF NOT EXISTS broadcast_dedup_first_sent_idx ON broadcast_dedup (first_sent_at);

-- affiliate_clicks: clicks on affiliate links appended to broadcasts
CREATE TABLE IF NOT EXISTS affiliate_clicks (
    click_id      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    clicked_at    timestamptz NOT NULL DEFAULT now(),
    ref_code      text        NOT NULL,
    program       text,                             -- 'bybit' | 'coinglass' | ...
    channel       text,                             -- where the link was: 'telegram' | 'x' | 'email' | 'sms' | 'web'
    broadcast_id  uuid,                             -- broadcasts.broadcast_id the link was in, if known
    source        text        NOT NULL,             -- service that recorded the click
    vertical      text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly', 'system')),
    ip_hash       text,                             -- hashed, never the raw address
    user_agent    text,
    referrer      text
);
COMMENT ON TABLE affiliate_clicks IS 'Clicks on affiliate links (ref codes from .env)';
CREATE INDEX IF NOT EXISTS affiliate_clicks_ref_time_idx ON affiliate_clicks (ref_code, clicked_at DESC);
CREATE INDEX IF NOT EXISTS affiliate_clicks_time_idx     ON affiliate_clicks (clicked_at DESC);
