"""Polymarket scanner: wallet hunter, sync clusters, signal oracle, hybrid signals."""
