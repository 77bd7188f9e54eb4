"""Trading tests get a fresh database each (the paper venue's books are one account)."""

from __future__ import annotations

import pytest

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
def prices() -> StaticPrices:
    return StaticPrices()
