-- The Polymarket copy trader's records in the shared trading tables (issue 16, item 4): its
-- orders go to `orders` and its positions to `trades` with vertical = 'poly' (the column exists
-- since 0002, default 'perps'), next to the perps ones, so PnL, the scanner leaderboard and
-- the dashboards read one place. A poly trade is one position in one outcome token, from the
-- first entry until it is flat again (sold out in steps, or redeemed at resolution).
--
-- trades (poly): symbol = the outcome token id, condition_id = its market, direction 'long'
-- (a bought share), leverage 1, qty = shares bought, entry_price = average fill, margin = what
-- the shares cost with fees (the money at risk), signal_id = the uuid derived from the poly
-- signal's natural key (signal_key: condition|token|time), followed_wallets = the smart
-- wallets the signal followed, scanner / scanner_version = the poly scanner's.
ALTER TABLE trades ADD COLUMN IF NOT EXISTS condition_id text;
ALTER TABLE trades ADD COLUMN IF NOT EXISTS signal_key text;
ALTER TABLE trades ADD COLUMN IF NOT EXISTS followed_wallets text[];
COMMENT ON COLUMN trades.signal_key IS 'poly: the signal''s natural key (condition|token|time); signal_id is derived from it';
COMMENT ON COLUMN trades.followed_wallets IS 'poly: the smart wallets the copied signal followed';

-- why a poly position closed: its exit reasons (quantcore.trading.poly.ExitReason) or resolution
ALTER TABLE trades DROP CONSTRAINT IF EXISTS trades_close_reason_check;
ALTER TABLE trades ADD CONSTRAINT trades_close_reason_check CHECK (close_reason IN (
    'tp', 'sl', 'trailing_sl', 'liquidation', 'manual', 'cancelled',
    'resolved', 'wallets_exited', 'edge_decayed', 'resolution_near', 'over_cap'));

-- one open poly position per token and venue (the venue holds one per token): a second signal
-- on a held token adds to it, as a second rung adds to a perps trade
CREATE UNIQUE INDEX IF NOT EXISTS trades_poly_open_idx ON trades (venue, symbol)
    WHERE vertical = 'poly' AND status IN ('pending', 'open');

-- orders (poly): order_link_id = the venue order id derived from the signal ('pc-' + 32 hex +
-- '-' + step, up to 40 chars: Polymarket has no 36-char client id limit), side buy / sell,
-- order_type 'limit', time_in_force 'ioc' (Polymarket's FAK), reduce_only for exit steps.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS signal_key text;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_order_link_id_check;
ALTER TABLE orders ADD CONSTRAINT orders_order_link_id_check CHECK (
    char_length(order_link_id) <= CASE WHEN vertical = 'poly' THEN 64 ELSE 36 END);
CREATE INDEX IF NOT EXISTS orders_poly_symbol_idx ON orders (symbol, created_at)
    WHERE vertical = 'poly';

-- every exit step and redemption belongs to the trade it took shares out of
ALTER TABLE poly_copy_steps ADD COLUMN IF NOT EXISTS trade_id uuid;
CREATE INDEX IF NOT EXISTS poly_copy_steps_trade_idx ON poly_copy_steps (trade_id, time);

-- Outcome learning: each followed wallet's record as copied by us, from the closed poly trades
-- that followed it (quantcore.trading.stats.track_record, the scanner leaderboard's numbers).
CREATE TABLE IF NOT EXISTS poly_wallet_copy_stats (
    wallet            text        NOT NULL,
    venue             text        NOT NULL CHECK (venue IN ('paper', 'testnet', 'live')),
    trades            int         NOT NULL,
    wins              int         NOT NULL,
    losses            int         NOT NULL,
    win_rate          numeric,                      -- RATIO 0..1
    avg_win_pct       numeric,                      -- percent of the cost
    avg_loss_pct      numeric,
    reward_risk       numeric,
    total_pnl_pct     numeric,                      -- compounded, percent per trade
    pnl_usd           numeric     NOT NULL,
    max_drawdown_pct  numeric,
    last_closed_at    timestamptz,
    vertical          text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet, venue)
);
COMMENT ON TABLE poly_wallet_copy_stats IS
    'Track record of copying each smart wallet (closed poly copy trades that followed it)';

