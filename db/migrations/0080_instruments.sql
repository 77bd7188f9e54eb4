-- 0080_instruments.sql
-- Issue 11: the venue's price and quantity grid of every linear perp, as the market collector
-- discovers it (/v5/market/instruments-info, hourly). The ranker plans a signal's entries, stop
-- and take-profit on this grid (quantcore.trading.decision), so the plan announced with the
-- signal is the plan the autotrader places, to the tick. One row per coin, overwritten.
CREATE TABLE IF NOT EXISTS instruments (
    symbol        text             PRIMARY KEY,
    base_coin     text             NOT NULL,
    quote_coin    text             NOT NULL,
    status        text             NOT NULL,
    tick_size     double precision NOT NULL CHECK (tick_size > 0),
    qty_step      double precision NOT NULL CHECK (qty_step > 0),
    min_qty       double precision NOT NULL CHECK (min_qty >= 0),
    max_leverage  double precision NOT NULL CHECK (max_leverage >= 1),
    source        text             NOT NULL,           -- 'bybit' | 'sim'
    updated_at    timestamptz      NOT NULL
);
COMMENT ON TABLE instruments IS
    'Price tick, qty step and min qty of every linear perp (market collector, hourly)';
