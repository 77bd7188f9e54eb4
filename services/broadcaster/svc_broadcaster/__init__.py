"""Broadcaster service."""
