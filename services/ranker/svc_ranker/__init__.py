"""Ranker service."""
