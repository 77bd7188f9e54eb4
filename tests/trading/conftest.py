"""Trading tests get a fresh database each (the paper venue's books are one account)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from psycopg_pool import AsyncConnectionPool

from quantcore.db import conninfo
from quantcore.testing import Infra, Sandbox, sandbox
from quantcore.venues.prices import Quote


class StaticPrices:
    """The market as a test sets it: the paper venue fills against these quotes."""

    def __init__(self) -> None:
        self.book: dict[str, Quote] = {}

    def set(self, symbol: str, last: float, funding_rate_pct: float | None = 0.01) -> None:
        self.book[symbol] = Quote(symbol, last, last, funding_rate_pct)

    async def quotes(self) -> dict[str, Quote]:
        return dict(self.book)


@pytest.fixture
def fresh(infra: Infra) -> Iterator[Sandbox]:
    with sandbox(infra, "trade") as sb:
        yield sb


@pytest.fixture
async def fresh_pool(fresh: Sandbox) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(conninfo(fresh.settings), min_size=1, max_size=6, open=False)
    await p.open(wait=True)
    yield p
    await p.close()


@pytest.fixture
def prices() -> StaticPrices:
    return StaticPrices()
