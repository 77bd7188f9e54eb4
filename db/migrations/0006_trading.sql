-- 0006_trading.sql
-- Autotrader decisions, the paper venue's books, scanner track records, and live outcomes in the
-- coin x timeframe success rate.

-- autotrader_decisions: one row per signal the autotrader decided on (natural key: the signal).
-- A redelivered signal finds its decision here; two replicas can never both decide.
CREATE TABLE IF NOT EXISTS autotrader_decisions (
    signal_id      uuid        PRIMARY KEY,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    agent          text        NOT NULL,
    agent_version  text        NOT NULL,
    instance       text        NOT NULL,            -- replica that decided
    decision       text        NOT NULL CHECK (decision IN ('traded', 'skipped', 'refused', 'expired')),
    reason         text,
    trade_id       uuid,
    symbol         text        NOT NULL,
    venue          text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    vertical       text        NOT NULL DEFAULT 'perps' CHECK (vertical IN ('perps', 'poly')),
    detail         jsonb       NOT NULL DEFAULT '{}'  -- the plan: entries, stop, size, guards seen
);
COMMENT ON TABLE autotrader_decisions IS 'Every autotrader decision on a signal, with its reason and plan';
CREATE INDEX IF NOT EXISTS autotrader_decisions_time_idx ON autotrader_decisions (decided_at DESC);

-- --- the paper venue (our own matching against market prices) ---------------------------------
-- It keeps its books like an exchange would, apart from the trade log, so the autotrader and the
-- position monitor reconcile against it exactly as they do against Bybit.

CREATE TABLE IF NOT EXISTS paper_account (
    account        text        PRIMARY KEY DEFAULT 'paper',
    balance        numeric     NOT NULL,            -- wallet balance, USDT (realised PnL and fees in)
    start_equity   numeric     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS paper_orders (
    order_link_id   text        PRIMARY KEY,
    venue_order_id  text        NOT NULL UNIQUE,
    symbol          text        NOT NULL,
    side            text        NOT NULL CHECK (side IN ('Buy', 'Sell')),
    order_type      text        NOT NULL CHECK (order_type IN ('Market', 'Limit')),
    qty             numeric     NOT NULL CHECK (qty > 0),
    price           numeric,
    time_in_force   text        NOT NULL DEFAULT 'GTC',
    reduce_only     boolean     NOT NULL DEFAULT false,
    status          text        NOT NULL,
    filled_qty      numeric     NOT NULL DEFAULT 0,
    avg_fill_price  numeric,
    fee             numeric     NOT NULL DEFAULT 0,
    stop_loss       numeric,
    take_profit     numeric,
    reject_reason   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS paper_orders_open_idx ON paper_orders (symbol)
    WHERE status IN ('New', 'PartiallyFilled');

CREATE TABLE IF NOT EXISTS paper_positions (
    symbol          text        PRIMARY KEY,        -- one-way mode: one position per coin
    side            text        NOT NULL CHECK (side IN ('Buy', 'Sell')),
    size            numeric     NOT NULL CHECK (size > 0),
    avg_price       numeric     NOT NULL,
    leverage        numeric     NOT NULL,
    stop_loss       numeric,
    take_profit     numeric,
    fees            numeric     NOT NULL DEFAULT 0, -- trading + funding fees since open
    realised_pnl    numeric     NOT NULL DEFAULT 0, -- partial closes, before fees
    closed_qty      numeric     NOT NULL DEFAULT 0,
    closed_value    numeric     NOT NULL DEFAULT 0, -- sum of exit qty x price, for the average exit
    last_funding_at timestamptz NOT NULL DEFAULT now(),
    opened_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS paper_leverage (
    symbol    text    PRIMARY KEY,
    leverage  numeric NOT NULL CHECK (leverage >= 1)
);

CREATE TABLE IF NOT EXISTS paper_executions (
    exec_id          text        PRIMARY KEY,
    time             timestamptz NOT NULL,
    venue_order_id   text        NOT NULL,
    order_link_id    text,
    symbol           text        NOT NULL,
    side             text        NOT NULL CHECK (side IN ('Buy', 'Sell')),
    price            numeric     NOT NULL,
    qty              numeric     NOT NULL,
    fee              numeric     NOT NULL,
    exec_type        text        NOT NULL,          -- Trade | Funding | BustTrade
    stop_order_type  text                           -- StopLoss | TakeProfit | NULL
);
CREATE INDEX IF NOT EXISTS paper_executions_time_idx ON paper_executions (time DESC);

CREATE TABLE IF NOT EXISTS paper_closed_pnl (
    venue_order_id   text        PRIMARY KEY,       -- the closing order
    symbol           text        NOT NULL,
    side             text        NOT NULL CHECK (side IN ('Buy', 'Sell')),
    qty              numeric     NOT NULL,
    avg_entry_price  numeric     NOT NULL,
    avg_exit_price   numeric     NOT NULL,
    closed_pnl       numeric     NOT NULL,          -- after fees
    leverage         numeric     NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS paper_closed_pnl_time_idx ON paper_closed_pnl (updated_at DESC);

-- --- outcome learning ---------------------------------------------------------------------------

-- scanner_stats: each scanner version's track record from its closed trades (the leaderboard).
CREATE TABLE IF NOT EXISTS scanner_stats (
    scanner           text        NOT NULL,
    scanner_version   text        NOT NULL,
    venue             text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    trades            int         NOT NULL,
    wins              int         NOT NULL,
    losses            int         NOT NULL,
    win_rate          numeric,                      -- RATIO 0..1
    avg_win_pct       numeric,                      -- percent on margin
    avg_loss_pct      numeric,
    reward_risk       numeric,
    total_pnl_pct     numeric,                      -- compounded, percent on margin per trade
    pnl_quote         numeric,
    max_drawdown_pct  numeric,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scanner, scanner_version, venue)
);
COMMENT ON TABLE scanner_stats IS 'Track record per scanner version and venue, from closed trades';

-- Live trades feed the coin x timeframe success rate next to the historical samples.
ALTER TABLE coin_liquidation_patterns ADD COLUMN IF NOT EXISTS trade_wins   int NOT NULL DEFAULT 0;
ALTER TABLE coin_liquidation_patterns ADD COLUMN IF NOT EXISTS trade_losses int NOT NULL DEFAULT 0;
