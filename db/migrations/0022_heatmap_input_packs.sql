-- 0022_heatmap_input_packs.sql
-- The 4-hour inputs of each coin, packed: a refresh of 500 coins reads a year of 4-hour
-- intervals per coin (~1.1 M rows, 70 % of its read) that change once every 4 hours. Each
-- write of a coin's 4-hour intervals (quantcore.store.heatmap_inputs.write_inputs) rebuilds
-- its pack in the same transaction: every stored 4-hour interval of the coin in time order,
-- one big-endian array per column (time as binary timestamptz, int4 widths, float8 values,
-- NaN for NULL). Readers filter by time themselves (as of any moment).
CREATE TABLE IF NOT EXISTS heatmap_input_packs (
    symbol        text        NOT NULL,
    interval_s    int         NOT NULL,
    intervals     int         NOT NULL,
    last_time     timestamptz NOT NULL,             -- newest interval packed
    t             bytea       NOT NULL,
    w             bytea       NOT NULL,
    open          bytea       NOT NULL,
    high          bytea       NOT NULL,
    low           bytea       NOT NULL,
    close         bytea       NOT NULL,
    open_interest bytea       NOT NULL,
    taker_buy     bytea       NOT NULL,
    taker_sell    bytea       NOT NULL,
    long_ratio    bytea       NOT NULL,
    PRIMARY KEY (symbol, interval_s)
);
COMMENT ON TABLE heatmap_input_packs IS
    'heatmap_inputs of one symbol x interval packed as big-endian arrays (rebuilt by each write)';
ALTER TABLE heatmap_input_packs ALTER COLUMN t SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN w SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN open SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN high SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN low SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN close SET STORAGE EXTERNAL;
ALTER TABLE heatmap_input_packs ALTER COLUMN open_interest SET STORAGE EXTERNAL;
