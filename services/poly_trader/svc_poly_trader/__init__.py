"""Polymarket copy trader (agent poly_copy)."""
