"""Trading tests get a fresh database each (the paper venue's books are one account)."""

from __future__ import annotations

from datetime import datetime

import pytest

from quantcore.model.market import Candle
from quantcore.venues.prices import Quote


class StaticPrices:
    """The market as a test sets it: the paper venue fills against these quotes."""

    def __init__(self) -> None:
        self.book: dict[str, Quote] = {}
        self.bars: dict[tuple[str, datetime], float] = {}  # (symbol, bar start) → its open
        self.candles: dict[str, list[Candle]] = {}  # the 1-min path, oldest first

    def set(self, symbol: str, last: float, funding_rate_pct: float | None = 0.01) -> None:
        self.book[symbol] = Quote(symbol, last, last, funding_rate_pct)

    async def quotes(self) -> dict[str, Quote]:
        return dict(self.book)

    async def bar_open(self, symbol: str, start: datetime) -> float | None:
        return self.bars.get((symbol, start))

    async def bars_since(self, symbol: str, since: datetime) -> list[Candle]:
        return [c for c in self.candles.get(symbol, []) if c.start >= since]


@pytest.fixture
def prices() -> StaticPrices:
    return StaticPrices()
