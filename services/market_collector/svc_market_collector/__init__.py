"""Market collector service."""
