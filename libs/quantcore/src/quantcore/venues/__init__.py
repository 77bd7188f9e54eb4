"""Execution venues behind one interface: paper (ours), Bybit testnet and live (pybit)."""
