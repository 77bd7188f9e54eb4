-- 0075_paper_path_watch.sql
-- The paper venue closes positions with the one stop / target / liquidation rule
-- (quantcore.math.matching.first_exit) on the 1-min bars the price made since it last looked,
-- as the backtester does on its tape. watch_bar: the bar the entry filled at the open of (no
-- gap there); watch_from: the first bar not yet fully seen. NULL: the position is watched on
-- sampled last prices only (an entry not filled at a known bar's open, or a moved level).
ALTER TABLE paper_positions ADD COLUMN IF NOT EXISTS watch_bar timestamptz;
ALTER TABLE paper_positions ADD COLUMN IF NOT EXISTS watch_from timestamptz;
