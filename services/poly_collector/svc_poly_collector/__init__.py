"""Polymarket collector: markets, books, trade feed, candidate wallets and their histories."""
