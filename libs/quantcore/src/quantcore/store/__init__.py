"""Typed writers and readers of our own tables (models in, rows out). No venue payloads here."""
