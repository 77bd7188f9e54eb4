-- 0059_heatmap_inputs_collected.sql
-- Issue 14: the inputs of the key-free heatmap estimate the market collector gathers from the
-- venue's public data.

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
