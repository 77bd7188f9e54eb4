"""Collection jobs shared by the collector services and the CLI (backfill)."""
