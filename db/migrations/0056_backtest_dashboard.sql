-- 0056_backtest_dashboard.sql
-- What the Grafana "Backtests" dashboard and the scanner leaderboard read of the backtester
-- (issue 13).
--
-- A walk-forward's out-of-sample result (its test windows chained, each scored with the
-- settings its fit window chose) is a run of its own: phase 'oos', params = the chosen
-- settings per fold. It is the headline figure of a strategy, so it is stored, not recomputed.
ALTER TABLE backtest_runs DROP CONSTRAINT IF EXISTS backtest_runs_phase_check;
ALTER TABLE backtest_runs ADD CONSTRAINT backtest_runs_phase_check
    CHECK (phase IN ('full', 'fit', 'test', 'oos'));

-- Each run's equity curve, thinned to at most a few hundred buckets of bars: the bucket's last
-- close time, the equity there, and the deepest drawdown inside it (so the trough survives).
CREATE TABLE IF NOT EXISTS backtest_equity (
    run_id       text        NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE,
    seq          integer     NOT NULL,
    time         timestamptz NOT NULL,
    days         float8      NOT NULL,  -- since the run's window start
    equity_pct   float8      NOT NULL,  -- change from the start, %
    drawdown_pct float8      NOT NULL CHECK (drawdown_pct >= 0),  -- below the running peak, %
    PRIMARY KEY (run_id, seq)
);

-- A strategy version's headline backtest: its latest walk-forward out-of-sample result, else
-- its latest single run (sweep points and fold phases are in backtest_runs, not headlines).
-- One definition, read by the Backtests dashboard and the scanner leaderboard
-- (quantcore.store.control.LEADERBOARD_SQL: Grafana, Telegram /scanners and `quant scanners`).
CREATE OR REPLACE VIEW backtest_headline AS
SELECT DISTINCT ON (strategy, version)
       run_id, created_at, strategy, version, phase = 'oos' AS out_of_sample, tape, symbols,
       window_start, window_end, days, trades, pnl_pct, win_rate_pct, profit_factor, sharpe,
       max_drawdown_pct, warning
FROM backtest_runs
WHERE phase = 'oos' OR (phase = 'full' AND sweep_id IS NULL)
ORDER BY strategy, version, (phase = 'oos') DESC, created_at DESC;

GRANT SELECT ON backtest_runs, backtest_trades, backtest_equity, backtest_headline
TO grafana_reader;
