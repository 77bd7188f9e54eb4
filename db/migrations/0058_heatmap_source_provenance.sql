-- 0058_heatmap_source_provenance.sql
-- Which heatmap fed each cluster, target, ranking and signal (issue 14): 'coinglass', 'model'
-- (the key-free estimate, whose levels are stored with source 'estimate') or 'sim'. NULL on
-- rows written before this column existed (their source is not known).
ALTER TABLE liquidation_clusters ADD COLUMN IF NOT EXISTS heatmap_source text
    CHECK (heatmap_source IN ('coinglass', 'model', 'sim'));
COMMENT ON COLUMN liquidation_clusters.heatmap_source IS
    'coinglass | model | sim: the heatmap the cluster was merged from';
ALTER TABLE cluster_targets ADD COLUMN IF NOT EXISTS heatmap_source text
    CHECK (heatmap_source IN ('coinglass', 'model', 'sim'));
COMMENT ON COLUMN cluster_targets.heatmap_source IS
    'coinglass | model | sim: the heatmap the target cluster came from';
ALTER TABLE coin_rankings ADD COLUMN IF NOT EXISTS heatmap_source text
    CHECK (heatmap_source IN ('coinglass', 'model', 'sim'));
COMMENT ON COLUMN coin_rankings.heatmap_source IS
    'coinglass | model | sim: the heatmap of the coin''s target timeframe (else of most of its timeframes)';
ALTER TABLE signals ADD COLUMN IF NOT EXISTS heatmap_source text
    CHECK (heatmap_source IN ('coinglass', 'model', 'sim'));
COMMENT ON COLUMN signals.heatmap_source IS
    'coinglass | model | sim: the heatmap the signal''s ranking came from';
