-- 0020_heatmap_model_inputs.sql
-- Inputs of the key-free heatmap estimate (issue 14, quantcore.math.liqmodel).
--
-- heatmap_inputs: one row per coin x interval: the candle, the open interest at its end,
-- the taker flow in it and the account ratio, all as float8 (the model computes in float64;
-- a refresh of 500 coins reads ~1.5 M rows, packed per coin, and numeric -> float8
-- conversions would be most of that read). The recent days as 5-minute intervals, the year
-- before as 4-hour ones. NULL = not known (never a zero that looks like data).
CREATE TABLE IF NOT EXISTS heatmap_inputs (
    time          timestamptz NOT NULL,             -- interval open time
    symbol        text        NOT NULL,
    interval_s    int         NOT NULL CHECK (interval_s > 0),  -- 300 | 14400
    open          double precision NOT NULL CHECK (open > 0),
    high          double precision NOT NULL CHECK (high > 0),
    low           double precision NOT NULL CHECK (low > 0),
    close         double precision NOT NULL CHECK (close > 0),
    open_interest double precision CHECK (open_interest >= 0),  -- base qty at the interval's end
    taker_buy     double precision CHECK (taker_buy >= 0),      -- base volume bought by takers
    taker_sell    double precision CHECK (taker_sell >= 0),     -- base volume sold by takers
    long_ratio    double precision CHECK (long_ratio BETWEEN 0 AND 1),  -- share of accounts long
    source        text        NOT NULL,             -- 'bybit' | 'sim'
    PRIMARY KEY (symbol, interval_s, time)
);
COMMENT ON TABLE heatmap_inputs IS
    'Inputs of the heatmap estimate per symbol x interval (candle, OI at its end, taker flow, account ratio); hypertable';
SELECT ws_create_hypertable('heatmap_inputs', 'time', '7 days');
SELECT ws_add_compression('heatmap_inputs', 'symbol', '30 days');

-- risk_limit_tiers: the venue's maintenance margin per position-size tier (/v5/market/risk-limit)
CREATE TABLE IF NOT EXISTS risk_limit_tiers (
    symbol                  text        NOT NULL,
    tier                    int         NOT NULL CHECK (tier >= 1),
    risk_limit_value        double precision NOT NULL CHECK (risk_limit_value > 0),  -- USD, tier's upper bound
    maintenance_margin_rate double precision NOT NULL CHECK (maintenance_margin_rate > 0 AND maintenance_margin_rate < 1),
    initial_margin_rate     double precision CHECK (initial_margin_rate > 0 AND initial_margin_rate <= 1),
    max_leverage            double precision CHECK (max_leverage >= 1),
    source                  text        NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, tier)
);
COMMENT ON TABLE risk_limit_tiers IS 'Maintenance-margin tiers per symbol (venue risk limits)';
