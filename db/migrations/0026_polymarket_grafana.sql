-- 0026_polymarket_grafana.sql
-- The Grafana "Polymarket" dashboard reads the poly tables (grafana_reader: SELECT only).
GRANT SELECT ON
    poly_markets, poly_trades, poly_prices, poly_positions, poly_wallets, poly_backfill,
    poly_wallet_scores, poly_clusters, poly_cluster_members, poly_signals, poly_perp_links,
    hybrid_signals
TO grafana_reader;
