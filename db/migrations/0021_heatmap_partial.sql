-- 0021_heatmap_partial.sql
-- A heatmap estimated from incomplete inputs (a coin listed recently, open interest history
-- missing) is stored as such: its long timeframes hold only what the inputs show.
ALTER TABLE liquidation_refreshes ADD COLUMN IF NOT EXISTS partial boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN liquidation_refreshes.partial IS
    'true when the refresh came from incomplete inputs (the estimate: history shorter than the timeframe, or no open interest)';
