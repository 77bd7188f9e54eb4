"""CoinGlass v4 liquidation heatmaps over httpx (CoinGlass has no official Python client)."""
