"""Cluster scanner service."""
