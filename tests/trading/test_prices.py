"""Ticker quotes for the paper venue: cached, and served while a refresh runs behind them, so
an order never waits for the REST call while prices flow (fake Bybit REST, real client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.venues.prices import TickerPrices
from tests.conftest import aeventually
from tests.fakes.bybit import SYMBOL, FakeBybit


class CountingBybit(FakeBybit):
    def __init__(self) -> None:
        super().__init__()
        self.ticker_calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def tickers(self, request):  # type: ignore[no-untyped-def]
        self.ticker_calls += 1
        await self.gate.wait()
        return await super().tickers(request)


@pytest.fixture
async def market() -> AsyncIterator[tuple[CountingBybit, BybitMarketData]]:
    server = CountingBybit()
    await server.start()
    client = BybitMarketData(server.url, rate_per_s=1000)
    yield server, client
    server.gate.set()
    await client.aclose()
    await server.stop()


async def test_stale_quotes_are_served_while_one_refresh_runs_behind(
    market: tuple[CountingBybit, BybitMarketData],
) -> None:
    server, client = market
    prices = TickerPrices(client, max_age_s=0.0, stale_s=60)  # always past max_age, in the window
    assert SYMBOL in await prices.quotes() and server.ticker_calls == 1  # none cached: fetched
    server.gate.clear()  # the venue's answer hangs: nobody may wait for it
    got = await asyncio.wait_for(asyncio.gather(*(prices.quotes() for _ in range(5))), 1)
    assert all(SYMBOL in g for g in got)
    await aeventually(lambda: server.ticker_calls == 2, timeout=5)  # one refresh behind, not five
    server.gate.set()
    await aeventually(lambda: prices._behind is not None and prices._behind.done(), timeout=5)
    assert server.ticker_calls == 2


async def test_quotes_older_than_the_stale_window_are_refreshed_first(
    market: tuple[CountingBybit, BybitMarketData],
) -> None:
    server, client = market
    prices = TickerPrices(client, max_age_s=0.0, stale_s=0.0)  # no stale window
    await prices.quotes()
    await prices.quotes()
    assert server.ticker_calls == 2 and prices._behind is None
