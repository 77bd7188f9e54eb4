"""Current prices for the paper venue and the position monitor: every coin's ticker in one
public REST call (Bybit or the simulator), cached for a moment so a pass over many positions
costs one request."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.model.market import Ticker


@dataclass(frozen=True)
class Quote:
    symbol: str
    last: float
    mark: float
    funding_rate_pct: float | None  # percent per funding interval


class PriceSource(Protocol):
    async def quotes(self) -> dict[str, Quote]: ...


def quote_of(t: Ticker) -> Quote:
    return Quote(t.symbol, t.last_price, t.mark_price or t.last_price, t.funding_rate_pct)


class TickerPrices:
    """All linear tickers through the public market-data adapter, cached `max_age_s`."""

    def __init__(self, market: BybitMarketData, max_age_s: float = 1.0) -> None:
        self.market = market
        self.max_age_s = max_age_s
        self._cache: dict[str, Quote] = {}
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def quotes(self) -> dict[str, Quote]:
        async with self._lock:
            if time.monotonic() - self._at > self.max_age_s:
                self._cache = {t.symbol: quote_of(t) for t in await self.market.tickers()}
                self._at = time.monotonic()
            return self._cache


class NoPrice(Exception):
    """No current price for a coin: a paper market order cannot fill without one."""
