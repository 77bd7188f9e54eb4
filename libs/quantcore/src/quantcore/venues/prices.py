"""Current prices for the paper venue and the position monitor: every coin's ticker in one
public REST call (Bybit or the simulator), cached for a moment so a pass over many positions
costs one request."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.logging import get_logger
from quantcore.model.market import Candle, Ticker

log = get_logger(component="prices")
BAR_OPEN_TRIES, BAR_OPEN_WAIT_S = 10, 0.2  # up to ~2 s for the bar in progress to begin


@dataclass(frozen=True)
class Quote:
    symbol: str
    last: float
    mark: float
    funding_rate_pct: float | None  # percent per funding interval


class PriceSource(Protocol):
    async def quotes(self) -> dict[str, Quote]: ...

    async def bar_open(self, symbol: str, start: datetime) -> float | None:
        """The open of the 1-min bar starting at `start` while it is the bar in progress (None
        once a later bar exists, or before it starts: the order is then filled at the last
        price)."""
        ...

    async def bars_since(self, symbol: str, since: datetime) -> list[Candle]:
        """The 1-min bars starting at or after `since`, oldest first, the one in progress
        included (its range so far): the price path the paper venue closes positions on."""
        ...


def quote_of(t: Ticker) -> Quote:
    return Quote(t.symbol, t.last_price, t.mark_price or t.last_price, t.funding_rate_pct)


class TickerPrices:
    """All linear tickers through the public market-data adapter, cached `max_age_s`. Quotes up
    to `max_age_s` + `stale_s` old are served at once while one refresh runs behind them, so
    a caller (an order at the paper venue) never waits for the REST call while prices flow."""

    def __init__(
        self, market: BybitMarketData, max_age_s: float = 1.0, stale_s: float | None = None
    ) -> None:
        self.market = market
        self.max_age_s = max_age_s
        self.stale_s = max_age_s if stale_s is None else stale_s
        self._cache: dict[str, Quote] = {}
        self._at = 0.0
        self._lock = asyncio.Lock()
        self._behind: asyncio.Task[None] | None = None

    async def quotes(self) -> dict[str, Quote]:
        age = time.monotonic() - self._at
        if self._cache and age <= self.max_age_s:
            return self._cache
        if self._cache and age <= self.max_age_s + self.stale_s:
            if self._behind is None or self._behind.done():
                self._behind = asyncio.create_task(self._refresh_behind())
            return self._cache
        async with self._lock:
            if time.monotonic() - self._at > self.max_age_s:
                await self._refresh()
            return self._cache

    async def bar_open(self, symbol: str, start: datetime) -> float | None:
        # a decision at a bar's close can reach us before the venue has a trade in the next
        # bar (its market data a moment behind): wait a little for that bar to begin
        for attempt in range(BAR_OPEN_TRIES):
            candles = await self.market.klines(symbol, start, start + timedelta(minutes=1))
            if candles or attempt == BAR_OPEN_TRIES - 1:
                break
            await asyncio.sleep(BAR_OPEN_WAIT_S)
        if len(candles) != 1 or candles[0].start != start:
            return None
        return candles[0].open

    async def bars_since(self, symbol: str, since: datetime) -> list[Candle]:
        # the venue's clock may differ from ours (the simulator's): ask up to a day ahead
        return await self.market.klines(
            symbol, since, max(since, datetime.now(UTC)) + timedelta(days=1)
        )

    async def _refresh(self) -> None:
        self._cache = {t.symbol: quote_of(t) for t in await self.market.tickers()}
        self._at = time.monotonic()

    async def _refresh_behind(self) -> None:
        try:
            async with self._lock:
                if time.monotonic() - self._at > self.max_age_s:
                    await self._refresh()
        except Exception as exc:  # the next caller past the stale window refreshes itself
            log.warning("ticker refresh failed", error=str(exc)[:300])


class NoPrice(Exception):
    """No current price for a coin: a paper market order cannot fill without one."""
