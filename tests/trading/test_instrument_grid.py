"""The venue's grid (venues.instruments.InstrumentGrid), the one cache of instruments-info the
autotrader and the position monitor share: fetched once, an unknown coin looked up again before
it is refused, refreshed after its age (fake Bybit REST server, real client)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from quantcore.adapters.bybit.rest import BybitMarketData
from quantcore.model.plan import InstrumentRules
from quantcore.venues.instruments import InstrumentGrid
from tests.fakes.bybit import SYMBOL, FakeBybit


class CountingBybit(FakeBybit):
    def __init__(self) -> None:
        super().__init__(tick="0.005")
        self.instrument_calls = 0

    async def instruments(self, request: web.Request) -> web.Response:
        self.instrument_calls += 1
        return await super().instruments(request)


@pytest.fixture
async def market() -> AsyncIterator[tuple[CountingBybit, BybitMarketData]]:
    server = CountingBybit()
    await server.start()
    client = BybitMarketData(server.url, 50.0)
    yield server, client
    await client.aclose()
    await server.stop()


async def test_one_fetch_an_unknown_coin_looked_up_again_and_refreshed_after_its_age(
    market: tuple[CountingBybit, BybitMarketData],
) -> None:
    server, client = market
    grid = InstrumentGrid(client)
    rules = await grid.rules(SYMBOL)
    assert isinstance(rules, InstrumentRules) and rules.tick_size == 0.005
    assert await grid.rules(SYMBOL) == rules and server.instrument_calls == 1  # cached
    with pytest.raises(LookupError, match="NOPEUSDT is not a trading linear perpetual"):
        await grid.rules("NOPEUSDT")
    assert server.instrument_calls == 2  # maybe listed since: asked once more, then refused
    aged = InstrumentGrid(client, refresh_s=0.0)
    await aged.rules(SYMBOL)
    await aged.rules(SYMBOL)
    assert server.instrument_calls == 4  # older than refresh_s: fetched again
