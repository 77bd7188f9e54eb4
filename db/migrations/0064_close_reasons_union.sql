-- 0064_close_reasons_union.sql
-- 0054 (a plug-in's reversal closes for reason 'signal') and 0062 (the copy trader's poly close
-- reasons) each redefined trades_close_reason_check from the same base, so the later one
-- dropped 'signal'. One list holding both.
ALTER TABLE trades DROP CONSTRAINT IF EXISTS trades_close_reason_check;
ALTER TABLE trades ADD CONSTRAINT trades_close_reason_check CHECK (close_reason IN (
    'tp', 'sl', 'trailing_sl', 'liquidation', 'manual', 'cancelled', 'signal',
    'resolved', 'wallets_exited', 'edge_decayed', 'resolution_near', 'over_cap'));
