"""Polymarket adapter: Gamma, CLOB public reads, Data API v2 → quantcore.model.poly."""
