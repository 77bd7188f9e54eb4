-- 0035_trading_vocabulary.sql
-- Our trading vocabulary in our tables (quantcore.model.trading), not Bybit's: sides 'buy' /
-- 'sell', order types 'market' / 'limit', order states 'submitting' (ours, before the venue's
-- answer) / 'new' / 'trigger_pending' / 'partially_filled' / 'filled' / 'cancelled' /
-- 'rejected', fill kinds and triggers. The `orders` table keeps our fields only (no venue
-- payload). The Bybit adapter translates at the edge; the paper venue speaks ours natively.

CREATE FUNCTION pg_temp.ws_status(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s
        WHEN 'Created' THEN 'submitting'   -- our state before the venue call
        WHEN 'New' THEN 'new'
        WHEN 'Active' THEN 'new'
        WHEN 'Triggered' THEN 'new'
        WHEN 'Untriggered' THEN 'trigger_pending'
        WHEN 'PartiallyFilled' THEN 'partially_filled'
        WHEN 'Filled' THEN 'filled'
        WHEN 'Cancelled' THEN 'cancelled'
        WHEN 'PartiallyFilledCanceled' THEN 'cancelled'
        WHEN 'Deactivated' THEN 'cancelled'
        WHEN 'Rejected' THEN 'rejected'
        ELSE s
    END
$$;

CREATE FUNCTION pg_temp.ws_tif(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 'PostOnly' THEN 'post_only' ELSE lower(s) END
$$;

-- --- orders ----------------------------------------------------------------------------------
ALTER TABLE orders DROP COLUMN IF EXISTS raw;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_side_check;
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_order_type_check;
UPDATE orders SET side = lower(side), order_type = lower(order_type),
                  time_in_force = pg_temp.ws_tif(time_in_force), status = pg_temp.ws_status(status);
ALTER TABLE orders ADD CONSTRAINT orders_side_check CHECK (side IN ('buy', 'sell'));
ALTER TABLE orders ADD CONSTRAINT orders_order_type_check CHECK (order_type IN ('market', 'limit'));
ALTER TABLE orders ADD CONSTRAINT orders_time_in_force_check
    CHECK (time_in_force IS NULL OR time_in_force IN ('gtc', 'ioc', 'fok', 'post_only'));
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'submitting', 'new', 'trigger_pending', 'partially_filled', 'filled', 'cancelled', 'rejected'));
COMMENT ON COLUMN orders.status IS
    'Our order states (quantcore.model.trading.OrderStatus); submitting = written before the venue call';
DROP INDEX IF EXISTS orders_open_idx;
CREATE INDEX IF NOT EXISTS orders_open_idx ON orders (venue, symbol)
    WHERE status IN ('submitting', 'new', 'trigger_pending', 'partially_filled');

-- order_events: the key holds the status, and several Bybit words map to one of ours, so the
-- rows are rewritten (first one per key wins) rather than updated in place.
INSERT INTO order_events (time, order_link_id, status, venue_order_id, filled_qty, avg_fill_price,
                          fee, agent, detail)
SELECT time, order_link_id, pg_temp.ws_status(status), venue_order_id, filled_qty, avg_fill_price,
       fee, agent, detail
FROM order_events WHERE pg_temp.ws_status(status) <> status
ON CONFLICT DO NOTHING;
DELETE FROM order_events WHERE pg_temp.ws_status(status) <> status;

-- --- the paper venue's books ---------------------------------------------------------------------
ALTER TABLE paper_orders DROP CONSTRAINT IF EXISTS paper_orders_side_check;
ALTER TABLE paper_orders DROP CONSTRAINT IF EXISTS paper_orders_order_type_check;
UPDATE paper_orders SET side = lower(side), order_type = lower(order_type),
                        time_in_force = pg_temp.ws_tif(time_in_force), status = pg_temp.ws_status(status);
ALTER TABLE paper_orders ALTER COLUMN time_in_force SET DEFAULT 'gtc';
ALTER TABLE paper_orders ADD CONSTRAINT paper_orders_side_check CHECK (side IN ('buy', 'sell'));
ALTER TABLE paper_orders ADD CONSTRAINT paper_orders_order_type_check
    CHECK (order_type IN ('market', 'limit'));
ALTER TABLE paper_orders ADD CONSTRAINT paper_orders_status_check
    CHECK (status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected'));
DROP INDEX IF EXISTS paper_orders_open_idx;
CREATE INDEX IF NOT EXISTS paper_orders_open_idx ON paper_orders (symbol)
    WHERE status IN ('new', 'partially_filled');

ALTER TABLE paper_positions DROP CONSTRAINT IF EXISTS paper_positions_side_check;
UPDATE paper_positions SET side = lower(side);
ALTER TABLE paper_positions ADD CONSTRAINT paper_positions_side_check CHECK (side IN ('buy', 'sell'));

ALTER TABLE paper_executions DROP CONSTRAINT IF EXISTS paper_executions_side_check;
ALTER TABLE paper_executions RENAME COLUMN exec_type TO kind;
ALTER TABLE paper_executions RENAME COLUMN stop_order_type TO trigger;
UPDATE paper_executions SET side = lower(side),
    kind = CASE kind WHEN 'Trade' THEN 'trade' WHEN 'Funding' THEN 'funding'
                     WHEN 'BustTrade' THEN 'liquidation' ELSE lower(kind) END,
    trigger = CASE trigger WHEN 'StopLoss' THEN 'stop_loss' WHEN 'TakeProfit' THEN 'take_profit'
                           WHEN 'TrailingStop' THEN 'trailing_stop' ELSE trigger END;
ALTER TABLE paper_executions ADD CONSTRAINT paper_executions_side_check CHECK (side IN ('buy', 'sell'));
ALTER TABLE paper_executions ADD CONSTRAINT paper_executions_kind_check
    CHECK (kind IN ('trade', 'funding', 'liquidation', 'adl', 'settlement'));
ALTER TABLE paper_executions ADD CONSTRAINT paper_executions_trigger_check
    CHECK (trigger IS NULL OR trigger IN ('take_profit', 'stop_loss', 'trailing_stop', 'conditional'));

ALTER TABLE paper_closed_pnl DROP CONSTRAINT IF EXISTS paper_closed_pnl_side_check;
UPDATE paper_closed_pnl SET side = lower(side);
ALTER TABLE paper_closed_pnl ADD CONSTRAINT paper_closed_pnl_side_check CHECK (side IN ('buy', 'sell'));
