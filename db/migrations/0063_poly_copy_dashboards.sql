-- The Polymarket copy trader on the dashboards (issue 16, item 5): its exposure against the
-- cap over time, written by poly_trader at every cap check (after each entry fill and every
-- pass), and Grafana's read access to what the copy-trading panels read.

CREATE TABLE IF NOT EXISTS poly_copy_exposure (
    time            timestamptz NOT NULL,
    venue           text        NOT NULL CHECK (venue IN ('paper', 'live')),
    agent           text        NOT NULL,
    equity          numeric     NOT NULL,           -- poly equity: cash + open positions at cost
    exposure        numeric     NOT NULL,           -- open positions at cost, fees included
    cap             numeric     NOT NULL,           -- POLY_RISK_CAP × equity
    open_positions  int         NOT NULL,
    vertical        text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    PRIMARY KEY (venue, time)
);
COMMENT ON TABLE poly_copy_exposure IS 'Copy trader exposure vs its cap at every cap check';
CREATE INDEX IF NOT EXISTS poly_copy_exposure_time_idx ON poly_copy_exposure (time DESC);

-- the Polymarket dashboard's copy-trading panels (trades, equity_snapshots and poly_prices
-- are granted already)
GRANT SELECT ON poly_copy_exposure, poly_copy_steps, poly_wallet_copy_stats TO grafana_reader;
