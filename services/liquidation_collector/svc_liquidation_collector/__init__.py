"""Liquidation collector service."""
