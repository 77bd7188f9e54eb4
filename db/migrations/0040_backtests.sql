-- 0040_backtests.sql
-- Backtest runs and their trades (issue 13). One row per run: a single backtest, or one
-- grid point of a sweep, or one fold's fit / test phase of a walk-forward. A sweep is
-- resumable: (sweep_id, params_hash, fold, phase) is unique, and a re-run skips what is here.
CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id           text        PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    strategy         text        NOT NULL,
    version          text        NOT NULL,
    params           jsonb       NOT NULL,
    params_hash      text        NOT NULL,
    tape             text        NOT NULL CHECK (tape IN ('sim', 'db', 'bybit')),
    tape_spec        jsonb       NOT NULL,             -- seed, coins, days, symbols, ...
    symbols          text[]      NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    sweep_id         text,                              -- NULL: a single run
    fold             integer     NOT NULL DEFAULT 0,    -- walk-forward fold (0 otherwise)
    phase            text        NOT NULL DEFAULT 'full' CHECK (phase IN ('full', 'fit', 'test')),
    commission       float8      NOT NULL,
    slippage         float8      NOT NULL,
    size             float8      NOT NULL,
    trades           integer     NOT NULL,
    win_rate_pct     float8,
    avg_win_pct      float8,
    avg_loss_pct     float8,
    reward_risk      float8,
    profit_factor    float8,
    pnl_pct          float8      NOT NULL,
    max_drawdown_pct float8      NOT NULL,
    sharpe           float8,
    sortino          float8,
    exposure_pct     float8      NOT NULL,
    trades_per_day   float8      NOT NULL,
    fees_pct         float8      NOT NULL,
    funding_pct      float8      NOT NULL,
    days             float8      NOT NULL,
    warning          text,
    report_path      text
);
CREATE UNIQUE INDEX IF NOT EXISTS backtest_runs_sweep_point
    ON backtest_runs (sweep_id, params_hash, fold, phase) WHERE sweep_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS backtest_runs_strategy_idx ON backtest_runs (strategy, version, created_at DESC);

CREATE TABLE IF NOT EXISTS backtest_trades (
    run_id       text        NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq          integer     NOT NULL,
    symbol       text        NOT NULL,
    side         text        NOT NULL CHECK (side IN ('long', 'short')),
    entry_time   timestamptz NOT NULL,
    exit_time    timestamptz NOT NULL,
    entry_price  float8      NOT NULL,
    exit_price   float8      NOT NULL,
    stop_loss    float8,
    take_profit  float8,
    exit_reason  text        NOT NULL
                 CHECK (exit_reason IN ('signal', 'reverse', 'stop_loss', 'take_profit', 'end')),
    pnl_pct      float8      NOT NULL,                  -- change of the coin's equity, after costs
    return_pct   float8      NOT NULL,                  -- on price, side-adjusted, before costs
    fees_pct     float8      NOT NULL,                  -- of the coin's starting equity
    funding_pct  float8      NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- No Grafana grant yet: grafana_reader holds SELECT on exactly what the dashboards read, and
-- the "Backtests" dashboard does not exist yet (its migration grants what it reads).
