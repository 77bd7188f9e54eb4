"""Whale Stack shared library."""
