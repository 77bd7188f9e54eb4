-- 0005_scanner_storage.sql
-- Storage for a scanner + ranker cycle over 500 coins in well under 2 s (issue 4).
--
-- 1. Packed heatmaps.
-- The scanners read the latest heatmap of every coin x timeframe each minute: ~620k
-- liquidation_levels rows for 500 coins, one index probe and two numeric -> float8
-- conversions per level, twice a minute (cluster scanner and ranker), ~0.5 s of server time
-- each. The collector now also stores each refresh's levels once, packed, in its freshness row:
-- the same levels the scanners would read (value_usd > 0, in the key's (side, price) order,
-- which is price order), as big-endian float8 arrays computed by the server from the stored
-- numerics, in the transaction that writes them. A scanner then reads 4,500 small rows.
-- NULL means "not packed" (rows written before this migration, or by another writer): readers
-- fall back to liquidation_levels. An empty bytea is a packed snapshot without levels.
ALTER TABLE liquidation_refreshes
    ADD COLUMN IF NOT EXISTS level_prices bytea,
    ADD COLUMN IF NOT EXISTS level_values bytea;
-- float8 arrays hardly compress: store them out of line uncompressed (no pglz on every read)
ALTER TABLE liquidation_refreshes ALTER COLUMN level_prices SET STORAGE EXTERNAL;
ALTER TABLE liquidation_refreshes ALTER COLUMN level_values SET STORAGE EXTERNAL;
COMMENT ON COLUMN liquidation_refreshes.level_prices IS
    'levels of this refresh with value_usd > 0, price as big-endian float8 array, (side, price) order; NULL = not packed';
COMMENT ON COLUMN liquidation_refreshes.level_values IS
    'value_usd of the same levels, big-endian float8 array';

-- 2. liquidation_clusters numbers as float8. A full scan writes ~116k clusters (500 coins x 9
-- timeframes x ~26); their values are float64 sums computed by the scanner, so numeric only
-- added a float8 -> numeric conversion per value (and numeric comparisons in the primary key
-- on `center`): about half of the write time. float8 is exact for what the scanner computed,
-- narrower on disk, and lets the scanner write them in one binary COPY.
ALTER TABLE liquidation_clusters
    ALTER COLUMN price_low           TYPE double precision,
    ALTER COLUMN price_high          TYPE double precision,
    ALTER COLUMN center              TYPE double precision,
    ALTER COLUMN value_usd           TYPE double precision,
    ALTER COLUMN ref_price           TYPE double precision,
    ALTER COLUMN distance_pct        TYPE double precision,
    ALTER COLUMN size_pct_of_typical TYPE double precision;
