"""Bybit v5 public market data through pybit: REST (`rest.BybitMarketData`) and the public
WebSocket (`ws.BybitPublicStream`)."""
