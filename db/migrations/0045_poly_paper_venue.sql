-- The paper Polymarket venue's books (issue 16): cash, taker orders (FAK: filled as far as the
-- book allows at once, the rest cancelled), every fill, and the holdings they build. The copy
-- trader's idempotency key is order_id (derived from the signal); poly_paper_fills has no key
-- on it, so a second fill of one order would show (the crash/replica tests count them).

CREATE TABLE IF NOT EXISTS poly_paper_account (
    account       text        PRIMARY KEY,
    cash          numeric     NOT NULL,
    start_equity  numeric     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS poly_paper_orders (
    order_id      text        PRIMARY KEY,
    condition_id  text        NOT NULL,
    token_id      text        NOT NULL,
    side          text        NOT NULL CHECK (side IN ('buy', 'sell')),
    limit_price   numeric     NOT NULL,
    shares        numeric     NOT NULL,
    tick          numeric     NOT NULL,
    filled        numeric     NOT NULL DEFAULT 0,
    avg_price     numeric,
    fee           numeric     NOT NULL DEFAULT 0,
    status        text        NOT NULL CHECK (status IN ('filled', 'partially_filled', 'cancelled', 'rejected')),
    reason        text,
    signal_key    text,
    vertical      text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    created_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS poly_paper_orders_time_idx ON poly_paper_orders (created_at DESC);

CREATE TABLE IF NOT EXISTS poly_paper_fills (
    id            bigserial   PRIMARY KEY,
    order_id      text        NOT NULL REFERENCES poly_paper_orders (order_id),
    token_id      text        NOT NULL,
    side          text        NOT NULL CHECK (side IN ('buy', 'sell', 'redeem')),
    price         numeric     NOT NULL,
    shares        numeric     NOT NULL CHECK (shares > 0),
    fee           numeric     NOT NULL,
    time          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS poly_paper_fills_order_idx ON poly_paper_fills (order_id);

CREATE TABLE IF NOT EXISTS poly_paper_holdings (
    token_id      text        PRIMARY KEY,
    condition_id  text        NOT NULL,
    shares        numeric     NOT NULL CHECK (shares >= 0),
    cost          numeric     NOT NULL,
    entry_shares  numeric     NOT NULL,
    realized_pnl  numeric     NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL
);
