-- 0059_heatmap_inputs_collected.sql
-- Issue 14: the inputs of the key-free heatmap estimate the market collector gathers from the
-- venue's public data, and the live hit rate of every heatmap source against the liquidations
-- that were recorded.

-- taker_flow: per minute and coin, what takers bought and sold (base asset), summed from the
-- public trade stream (publicTrade.{symbol}). No history endpoint exists for it (recent-trade
-- keeps only the last 1000 trades): collected live only. A minute's row is added to as
-- messages arrive (the collector flushes partial minutes).
CREATE TABLE IF NOT EXISTS taker_flow (
    time      timestamptz      NOT NULL,            -- minute start
    symbol    text             NOT NULL,
    buy_qty   double precision NOT NULL CHECK (buy_qty >= 0),   -- base volume bought by takers
    sell_qty  double precision NOT NULL CHECK (sell_qty >= 0),  -- base volume sold by takers
    trades    int              NOT NULL CHECK (trades >= 1),
    source    text             NOT NULL,            -- 'bybit' | 'sim'
    PRIMARY KEY (symbol, time)
);
COMMENT ON TABLE taker_flow IS
    'Taker buy / sell volume per coin x minute from the public trade stream (hypertable)';
SELECT ws_create_hypertable('taker_flow', 'time', '1 day');
SELECT ws_add_compression('taker_flow', 'symbol', '7 days');

-- account_ratios: the venue's long/short account ratio (/v5/market/account-ratio), the share
-- of accounts holding a long, per period (5-min for the recent days, 4-hour for the year).
CREATE TABLE IF NOT EXISTS account_ratios (
    time       timestamptz      NOT NULL,           -- the venue's timestamp of the period
    symbol     text             NOT NULL,
    period_s   int              NOT NULL CHECK (period_s > 0),
    long_ratio double precision NOT NULL CHECK (long_ratio BETWEEN 0 AND 1),
    source     text             NOT NULL,
    PRIMARY KEY (symbol, period_s, time)
);
COMMENT ON TABLE account_ratios IS
    'Share of accounts holding a long per coin x period (venue account ratio; hypertable)';
SELECT ws_create_hypertable('account_ratios', 'time', '7 days');
SELECT ws_add_compression('account_ratios', 'symbol', '30 days');

-- heatmap_hit_rates: every HEATMAP_EVAL_INTERVAL_S, per heatmap source, its latest heatmaps
-- as of `window_min` ago are scored against what happened since (quantcore.math.
-- heatmap_eval.realised): of the predicted clusters price reached, how many saw liquidations
-- recorded within ±tol_pct within the window (precision), and which share of the recorded
-- liquidation value lay within ±tol_pct of a predicted cluster (recall). NULL percentages:
-- nothing to score (no cluster reached, no liquidation recorded), never a zero.
CREATE TABLE IF NOT EXISTS heatmap_hit_rates (
    time            timestamptz NOT NULL,           -- evaluation time
    heatmap_source  text        NOT NULL CHECK (heatmap_source IN ('coinglass', 'model', 'sim')),
    timeframe       text        NOT NULL,
    predicted_at    timestamptz NOT NULL,           -- the snapshots scored were the latest at this time
    window_min      int         NOT NULL CHECK (window_min > 0),
    tol_pct         double precision NOT NULL CHECK (tol_pct > 0),
    coins           int         NOT NULL CHECK (coins >= 0),
    clusters        int         NOT NULL CHECK (clusters >= 0),   -- predicted clusters scored
    reached         int         NOT NULL CHECK (reached >= 0),    -- of them, reached by price
    hit             int         NOT NULL CHECK (hit >= 0),        -- of those, with liquidations
    liq_value_usd   double precision NOT NULL CHECK (liq_value_usd >= 0),   -- recorded in the window
    liq_inside_usd  double precision NOT NULL CHECK (liq_inside_usd >= 0),  -- of it, near a cluster
    precision_pct   double precision CHECK (precision_pct BETWEEN 0 AND 100),
    recall_pct      double precision CHECK (recall_pct BETWEEN 0 AND 100),
    PRIMARY KEY (heatmap_source, timeframe, predicted_at, time)
);
COMMENT ON TABLE heatmap_hit_rates IS
    'Live hit rate of each heatmap source against recorded liquidations (precision / recall within ±tol, window)';
SELECT ws_create_hypertable('heatmap_hit_rates', 'time', '30 days');

-- The Scanners dashboard's "Heatmap hit rate" panel reads it.
GRANT SELECT ON heatmap_hit_rates TO grafana_reader;
