-- The Polymarket copy trader (issue 16, agent poly_copy): one decision per poly signal (key:
-- the signal's natural key, so a re-published or redelivered signal is decided once) and every
-- step out of a position (gradual exits, redemptions) with its PnL. The orders themselves are
-- the venue's (poly_paper_orders for paper): reconciliation reads them back from there.

CREATE TABLE IF NOT EXISTS poly_copy_decisions (
    signal_key     text        PRIMARY KEY,         -- condition|token|signal time
    signal_time    timestamptz NOT NULL,
    condition_id   text        NOT NULL,
    token_id       text        NOT NULL,
    outcome        text,
    question       text,
    decision       text        NOT NULL CHECK (decision IN ('traded', 'refused', 'skipped')),
    reason         text,
    order_id       text,                            -- derived from signal_key (idempotency key)
    order_status   text,                            -- the venue's answer; NULL: not known yet
    limit_price    numeric,
    shares         numeric,
    filled         numeric,
    cost_usd       numeric,
    suggested_usd  numeric,
    implied_prob   double precision,
    edge           double precision,
    smart_wallets  int,
    agent          text        NOT NULL,
    venue          text        NOT NULL,
    vertical       text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS poly_copy_decisions_token_idx ON poly_copy_decisions (token_id, signal_time DESC);

CREATE TABLE IF NOT EXISTS poly_copy_steps (
    order_id       text        PRIMARY KEY,
    condition_id   text        NOT NULL,
    token_id       text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('exit', 'resolution')),
    reason         text        NOT NULL,
    shares         numeric     NOT NULL,
    price          numeric,
    cost_usd       numeric     NOT NULL,           -- cost basis taken out
    pnl_usd        numeric     NOT NULL,
    pnl_pct        double precision,               -- percent of cost_usd
    agent          text        NOT NULL,
    venue          text        NOT NULL,
    vertical       text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    time           timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS poly_copy_steps_token_idx ON poly_copy_steps (token_id, time);
