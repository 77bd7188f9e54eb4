-- Backtest trades of strategies that trade like the services (the liquidation hunter): a stop
-- moved by the trailing ladder and a liquidation are exit reasons of their own.
ALTER TABLE backtest_trades DROP CONSTRAINT IF EXISTS backtest_trades_exit_reason_check;
ALTER TABLE backtest_trades ADD CONSTRAINT backtest_trades_exit_reason_check
    CHECK (exit_reason IN ('signal', 'reverse', 'stop_loss', 'take_profit', 'end',
                           'trailing_stop', 'liquidation'));
