"""Wire shapes of the CoinGlass v4 liquidation heatmap endpoints
(coinglass-api-docs rest/Futures/Liquidation/liquidation-aggregate-heatmap*.md, authentication.md,
errors-rate-limits*.md). Same shape for model1/2/3 and for the pair variants."""

from __future__ import annotations

from typing import Any, TypedDict

API_KEY_HEADER = "CG-API-KEY"
OK_CODE = "0"  # the envelope code is a string
RATE_LIMIT_CODES = frozenset({"429"})
TEMPORARY_CODES = frozenset({"408", "500", "502", "503", "504"})
# Ranges the real API accepts; the simulator also serves 14d.
RANGES = frozenset({"12h", "24h", "3d", "7d", "30d", "90d", "180d", "1y"})
RATE_WINDOW_S = 60.0  # plans are limited per minute; a 429 without Retry-After waits this long


class Envelope(TypedDict):
    code: str
    msg: str
    data: Any


class HeatmapData(TypedDict):
    # price levels, numbers
    y_axis: list[float]
    # [x_index (position in price_candlesticks), y_index (position in y_axis), value_usd]
    liquidation_leverage_data: list[list[float]]
    # [ts_seconds (number), open, high, low, close, volume_usd (strings)], oldest first
    price_candlesticks: list[list[Any]]
