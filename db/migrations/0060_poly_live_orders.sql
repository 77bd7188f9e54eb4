-- The live Polymarket venue's order map (issue 16): our order id (derived from the signal, the
-- idempotency key) → the CLOB's order id (the EIP-712 hash of the signed order, known before it
-- is posted) and the signed order itself, written BEFORE it is posted: after a crash the order
-- is looked up at the CLOB by its hash and re-posted unchanged only if the CLOB never got it.
-- Fills are what the Data API trade feed confirms for the order's settlement transactions
-- (a "matched" answer that never settles stays unfilled).

CREATE TABLE IF NOT EXISTS poly_live_orders (
    order_id      text        PRIMARY KEY,
    order_hash    text        NOT NULL UNIQUE,
    signed_order  jsonb       NOT NULL,
    condition_id  text        NOT NULL,
    token_id      text        NOT NULL,
    side          text        NOT NULL CHECK (side IN ('buy', 'sell')),
    limit_price   numeric     NOT NULL,
    shares        numeric     NOT NULL,
    tick          numeric     NOT NULL,
    status        text        NOT NULL CHECK (status IN ('submitting', 'filled', 'partially_filled', 'cancelled', 'rejected')),
    reason        text,
    clob_status   text,                             -- the CLOB's word (matched, unmatched, ...)
    trade_ids     text[]      NOT NULL DEFAULT '{}',
    tx_hashes     text[]      NOT NULL DEFAULT '{}', -- settlement transactions of its trades
    filled        numeric     NOT NULL DEFAULT 0,   -- confirmed by the Data API feed
    avg_price     numeric,
    fee           numeric     NOT NULL DEFAULT 0,
    signal_key    text,
    vertical      text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS poly_live_orders_time_idx ON poly_live_orders (created_at DESC);
CREATE INDEX IF NOT EXISTS poly_live_orders_token_idx ON poly_live_orders (token_id, created_at);

-- Resolutions the live venue has reported to the trader (redemption itself is on chain and may
-- come before or after): a resolved market's positions no longer count as holdings.
CREATE TABLE IF NOT EXISTS poly_live_resolutions (
    condition_id     text        PRIMARY KEY,
    winner_token_id  text        NOT NULL,
    resolved_at      timestamptz NOT NULL DEFAULT now()
);
