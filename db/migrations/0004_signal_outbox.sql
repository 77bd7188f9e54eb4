-- 0004_signal_outbox.sql
-- Signals are published at least once: the ranker writes the signal row (with the event it
-- will publish in inputs->'event') before publishing, and stamps published_at after. A crash
-- in between leaves published_at NULL; the next leader cycle publishes it again. Consumers
-- dedupe on signal_id (the autotrader's orderLinkId is derived from it).
ALTER TABLE signals ADD COLUMN IF NOT EXISTS published_at timestamptz;
CREATE INDEX IF NOT EXISTS signals_unpublished_idx ON signals (time) WHERE published_at IS NULL;
