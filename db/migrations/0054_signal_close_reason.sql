-- 0054_signal_close_reason.sql
-- A strategy plug-in's position closed by its own opposite signal (the autotrader's reversal:
-- a reduce-only market close, then the new entry) is closed for reason 'signal' — not
-- 'manual', which stays the owner's own closes. The backtester calls these exits 'reverse'.
ALTER TABLE trades DROP CONSTRAINT IF EXISTS trades_close_reason_check;
ALTER TABLE trades ADD CONSTRAINT trades_close_reason_check
    CHECK (close_reason IN ('tp', 'sl', 'trailing_sl', 'liquidation', 'manual', 'cancelled', 'signal'));
