"""Spike scanner service."""
