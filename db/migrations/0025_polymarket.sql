-- 0025_polymarket.sql
-- The Polymarket vertical (issue 15): markets, trades, prices, positions and wallets as the
-- poly_collector stores them; wallet scores, sync clusters, signals and hybrid signals as the
-- poly_scanner writes them. Every row says vertical = 'poly' and where it came from (`source`:
-- polymarket | sim); scanner output carries scanner + scanner_version (provenance).
-- Prices are probabilities 0..1, sizes are shares, money is USD (pUSD).

CREATE TABLE IF NOT EXISTS poly_markets (
    condition_id      text        PRIMARY KEY,          -- 0x + 64 hex
    market_id         text        NOT NULL,             -- Gamma id
    question          text        NOT NULL,
    slug              text,
    version           text        NOT NULL CHECK (version IN ('v1', 'v2')),
    outcomes          text[]      NOT NULL,
    token_ids         text[]      NOT NULL,             -- v1 CTF token ids / v2 position ids, paired with outcomes
    outcome_prices    double precision[],
    category          text,
    tags              text[]      NOT NULL DEFAULT '{}',
    event_id          text,
    volume_usd        double precision,
    liquidity_usd     double precision,
    end_date          timestamptz,
    active            boolean     NOT NULL,
    closed            boolean     NOT NULL,
    resolved_outcome  text,                             -- winning outcome once resolved
    tick_size         double precision,
    neg_risk          boolean     NOT NULL DEFAULT false,
    vertical          text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source            text        NOT NULL CHECK (source IN ('polymarket', 'sim')),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(outcomes) = cardinality(token_ids) AND cardinality(token_ids) >= 2)
);
COMMENT ON TABLE poly_markets IS 'Polymarket markets (Gamma), both market versions; one row per condition';
CREATE INDEX IF NOT EXISTS poly_markets_open_idx ON poly_markets (closed, end_date);

CREATE TABLE IF NOT EXISTS poly_trades (
    time           timestamptz      NOT NULL,
    wallet         text             NOT NULL,
    condition_id   text             NOT NULL,
    token_id       text             NOT NULL,
    outcome_index  smallint,
    side           text             NOT NULL CHECK (side IN ('BUY', 'SELL')),
    size           double precision NOT NULL CHECK (size > 0),
    price          double precision NOT NULL CHECK (price >= 0 AND price <= 1),
    tx_hash        text             NOT NULL DEFAULT '',
    vertical       text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source         text             NOT NULL CHECK (source IN ('polymarket', 'sim')),
    PRIMARY KEY (wallet, time, token_id, side, tx_hash, size, price)
);
COMMENT ON TABLE poly_trades IS 'Polymarket fills (Data API trade feed and wallet histories), hypertable';
SELECT ws_create_hypertable('poly_trades', 'time', '7 days');
CREATE INDEX IF NOT EXISTS poly_trades_market_time_idx ON poly_trades (condition_id, time DESC);

CREATE TABLE IF NOT EXISTS poly_prices (
    time           timestamptz      NOT NULL,
    token_id       text             NOT NULL,
    condition_id   text             NOT NULL,
    price          double precision NOT NULL CHECK (price >= 0 AND price <= 1),  -- mid, else last
    best_bid       double precision,
    best_ask       double precision,
    spread         double precision,
    bid_depth_usd  double precision,
    ask_depth_usd  double precision,
    vertical       text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source         text             NOT NULL CHECK (source IN ('polymarket', 'sim')),
    PRIMARY KEY (token_id, time)
);
COMMENT ON TABLE poly_prices IS 'Polymarket outcome prices and books (CLOB), hypertable';
SELECT ws_create_hypertable('poly_prices', 'time', '7 days');

CREATE TABLE IF NOT EXISTS poly_positions (
    wallet             text             NOT NULL,
    token_id           text             NOT NULL,
    condition_id       text             NOT NULL,
    status             text             NOT NULL CHECK (status IN ('OPEN', 'REDEEMABLE', 'REDEEMABLE_LOST', 'MERGEABLE', 'CLOSED')),
    size               double precision NOT NULL,
    avg_price          double precision NOT NULL,
    cost_usd           double precision NOT NULL CHECK (cost_usd >= 0),
    realized_pnl_usd   double precision NOT NULL,
    unrealized_pnl_usd double precision,
    end_date           timestamptz,
    observed_at        timestamptz      NOT NULL DEFAULT now(),
    vertical           text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source             text             NOT NULL CHECK (source IN ('polymarket', 'sim')),
    PRIMARY KEY (wallet, token_id)
);
COMMENT ON TABLE poly_positions IS 'Latest known position of a wallet in an outcome token (Data API v2 positions)';

CREATE TABLE IF NOT EXISTS poly_wallets (
    wallet             text        PRIMARY KEY,
    name               text,
    found_via          text[]      NOT NULL DEFAULT '{}',  -- leaderboard:ALL, holders, feed
    leaderboard_pnl_usd double precision,
    history_synced_at  timestamptz,                        -- positions/trades fetched up to here
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    vertical           text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source             text        NOT NULL CHECK (source IN ('polymarket', 'sim'))
);
COMMENT ON TABLE poly_wallets IS 'Candidate wallets of the hunter and how they were found';

CREATE TABLE IF NOT EXISTS poly_backfill (
    task        text        PRIMARY KEY,   -- e.g. markets:closed, trades:feed
    cursor      text,                      -- cursor of the next page to fetch (NULL = from the start)
    pages       bigint      NOT NULL DEFAULT 0,
    rows        bigint      NOT NULL DEFAULT 0,
    done        boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE poly_backfill IS 'Resumable backfill walks of the poly_collector';

CREATE TABLE IF NOT EXISTS poly_wallet_scores (
    time             timestamptz      NOT NULL,          -- scan time
    wallet           text             NOT NULL,
    closed_positions int              NOT NULL,
    wins             int              NOT NULL,
    cost_usd         double precision NOT NULL,
    pnl_usd          double precision NOT NULL,
    roi              double precision,                   -- RATIO realised PnL / cost, window
    shrunk_roi       double precision,                   -- ROI shrunk toward the population mean
    win_streak       int              NOT NULL,
    early_entries    int              NOT NULL,          -- entries ≥ X h before a ≥ Y-point move
    early_share      double precision,
    trades_per_day   double precision,
    two_sided_share  double precision,                   -- share of markets traded on both sides
    label            text             NOT NULL CHECK (label IN ('smart', 'market_maker', 'bot', 'unproven', 'ordinary')),
    score            double precision NOT NULL,
    is_smart         boolean          NOT NULL,
    scanner          text             NOT NULL,
    scanner_version  text             NOT NULL,
    vertical         text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    inputs           jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (wallet, time)
);
COMMENT ON TABLE poly_wallet_scores IS 'Wallet hunter results per scan (hypertable)';
SELECT ws_create_hypertable('poly_wallet_scores', 'time', '7 days');
CREATE INDEX IF NOT EXISTS poly_wallet_scores_time_idx ON poly_wallet_scores (time DESC, score DESC);

CREATE TABLE IF NOT EXISTS poly_clusters (
    cluster_id       text             NOT NULL,           -- stable: hash of sorted members
    time             timestamptz      NOT NULL,
    members          text[]           NOT NULL,
    size             int              NOT NULL CHECK (size >= 2),
    density          double precision NOT NULL CHECK (density >= 0 AND density <= 1),
    markets          text[]           NOT NULL DEFAULT '{}',
    scanner          text             NOT NULL,
    scanner_version  text             NOT NULL,
    vertical         text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    inputs           jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (cluster_id, time)
);
COMMENT ON TABLE poly_clusters IS 'Sync clusters: wallets trading the same market and side within a window';

CREATE TABLE IF NOT EXISTS poly_cluster_members (
    cluster_id text NOT NULL,
    time       timestamptz NOT NULL,
    wallet     text NOT NULL,
    PRIMARY KEY (cluster_id, time, wallet)
);
CREATE INDEX IF NOT EXISTS poly_cluster_members_wallet_idx ON poly_cluster_members (wallet, time DESC);

CREATE TABLE IF NOT EXISTS poly_signals (
    time               timestamptz      NOT NULL,
    condition_id       text             NOT NULL,
    token_id           text             NOT NULL,
    outcome            text             NOT NULL,
    question           text             NOT NULL,
    market_price       double precision NOT NULL,       -- best ask we would pay
    implied_prob       double precision NOT NULL,       -- smart wallets' probability
    edge               double precision NOT NULL,       -- after fees and spread, probability points
    criteria_met       int              NOT NULL,
    criteria_total     int              NOT NULL,
    checklist          jsonb            NOT NULL,       -- {criterion: {ok, value, threshold}}
    smart_wallets      text[]           NOT NULL,
    cluster_id         text,
    suggested_size_usd double precision NOT NULL CHECK (suggested_size_usd >= 0),
    scanner            text             NOT NULL,
    scanner_version    text             NOT NULL,
    vertical           text             NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    source             text             NOT NULL CHECK (source IN ('polymarket', 'sim')),
    inputs             jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (condition_id, token_id, time)
);
COMMENT ON TABLE poly_signals IS 'Signal oracle output: market/side with edge, checklist and every input';
CREATE INDEX IF NOT EXISTS poly_signals_time_idx ON poly_signals (time DESC);

CREATE TABLE IF NOT EXISTS poly_perp_links (
    condition_id text        PRIMARY KEY,
    symbol       text        NOT NULL,            -- linear perp, e.g. BTCUSDT
    origin       text        NOT NULL CHECK (origin IN ('suggested', 'owner')),
    enabled      boolean     NOT NULL DEFAULT true,
    reason       text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE poly_perp_links IS 'Market to perp mapping: auto-suggested from the question, editable by the owner (origin=owner wins)';

CREATE TABLE IF NOT EXISTS hybrid_signals (
    time             timestamptz NOT NULL,
    condition_id     text        NOT NULL,
    token_id         text        NOT NULL,
    poly_signal_time timestamptz NOT NULL,
    symbol           text        NOT NULL,
    reasons          text[]      NOT NULL,        -- oi_spike, volume_spike, top10
    perp_rank        int,
    scanner          text        NOT NULL,
    scanner_version  text        NOT NULL,
    vertical         text        NOT NULL DEFAULT 'poly' CHECK (vertical = 'poly'),
    inputs           jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (condition_id, token_id, poly_signal_time, symbol)
);
COMMENT ON TABLE hybrid_signals IS 'Poly signals whose linked perp spiked or ranked top 10 in the same window';
