-- 0026_polymarket_grafana.sql
-- The Grafana "Polymarket" dashboard reads these poly tables (grafana_reader: SELECT on
-- exactly what the dashboards read; tests/e2e/test_dashboards.py checks the set).
GRANT SELECT ON
    poly_markets, poly_trades, poly_prices, poly_wallets, poly_wallet_scores, poly_clusters,
    poly_cluster_members, poly_signals, hybrid_signals
TO grafana_reader;
