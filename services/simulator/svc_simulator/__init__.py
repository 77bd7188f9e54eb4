"""Simulator service: the simulated market behind Bybit v5- and CoinGlass-shaped APIs."""
