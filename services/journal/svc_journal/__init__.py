"""Journal service."""
